"""order-capture's territory rules (territory.py) and the device rule (policy.py), without I/O."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from order_capture.domain.clock import Window
from order_capture.domain.policy import violation
from order_capture.domain.territory import (
    RepTerritory,
    Territories,
    check_territory,
    orders_acted_on,
    with_batch_orders,
)
from order_capture.domain.validation import KnownMasters, Reason, parse
from sellthrough_contracts import Envelope
from sellthrough_runtime.auth import Principal, Role
from tests.support.brand import OUTLETS, REPS, SKUS, event, invoice, order, stock_count

# O1, O2 of D1 on beats B-1, B-2; O3 of D2 on no beat; O4, O5 of D3.
KNOWN = KnownMasters(
    outlet_distributor=OUTLETS,
    skus=frozenset(SKUS),
    reps=frozenset(REPS),
    distributors=frozenset({"D1", "D2", "D3"}),
    outlet_beat={"O1": "B-1", "O2": "B-2", "O3": None, "O4": None, "O5": None},
)
REP_1 = Principal(Role.REP, "REP-1")
ADMIN = Principal(Role.ADMIN, "admin")
CONNECTOR_D1 = Principal(Role.CONNECTOR, "erp-d1", distributors=frozenset({"D1"}))
DISTRIBUTOR_D1 = Principal(Role.DISTRIBUTOR, "D1")


def parsed(raw: dict[str, Any]) -> Envelope:
    outcome = parse(raw, Window(datetime.now(UTC), timedelta(days=400), timedelta(minutes=5), "admin"))
    assert isinstance(outcome, Envelope), outcome
    return outcome


def reason(principal: Principal, raw: dict[str, Any], territories: Territories) -> Reason | None:
    rejection = check_territory(parsed(raw), principal, KNOWN, territories)
    return None if rejection is None else rejection.reason


def cancel(raw_order: dict[str, Any], actor: str) -> dict[str, Any]:
    p = raw_order["payload"]
    payload = {"order_id": p["order_id"], "outlet_id": p["outlet_id"], "distributor_id": p["distributor_id"]}
    return event("OrderCancelled", {**payload, "reason": "x"}, actor=actor)


def test_a_territory_covers_every_beat_of_its_distributors_unless_beats_are_given() -> None:
    everywhere = RepTerritory(frozenset({"D1", "D2"}))
    assert everywhere.covers("D1", "B-9")
    assert everywhere.covers("D2", None)
    assert not everywhere.covers("D3", None)
    on_beat = RepTerritory(frozenset({"D1"}), frozenset({"B-1"}))
    assert on_beat.covers("D1", "B-1")
    assert not on_beat.covers("D1", "B-2")
    assert not on_beat.covers("D1", None)  # an outlet on no beat is on none of the rep's beats


@pytest.mark.parametrize(
    ("territory", "outlet", "expected"),
    [
        (RepTerritory(frozenset({"D1"})), "O1", None),
        (RepTerritory(frozenset({"D1"})), "O3", Reason.OUTSIDE_TERRITORY),  # D2's outlet
        (RepTerritory(frozenset({"D1", "D2"})), "O3", None),  # a rep that also covers D2
        (RepTerritory(frozenset({"D1"}), frozenset({"B-1"})), "O1", None),
        (RepTerritory(frozenset({"D1"}), frozenset({"B-1"})), "O2", Reason.OUTSIDE_TERRITORY),  # another beat
        (None, "O1", Reason.UNKNOWN_REP),  # not registered: no territory
    ],
)
def test_a_rep_orders_only_inside_its_territory(territory: RepTerritory | None, outlet: str, expected: Reason) -> None:
    raw = order("O1", [("S1", 1)], rep_id="REP-1")
    raw["payload"] |= {"outlet_id": outlet, "distributor_id": OUTLETS[outlet]}
    assert reason(REP_1, raw, Territories(territory)) is expected


def test_a_reps_return_without_an_outlet_must_name_one_of_its_distributors() -> None:
    lines = [{"sku_id": "S1", "quantity": 1}]
    payload = {"return_id": "R1", "direction": "to_company", "reason": "expired", "lines": lines}
    territories = Territories(RepTerritory(frozenset({"D1"})))
    own = event("ReturnRecorded", {**payload, "distributor_id": "D1"}, actor="REP-1")
    other = event("ReturnRecorded", {**payload, "distributor_id": "D2"}, actor="REP-1")
    assert reason(REP_1, own, territories) is None
    assert reason(REP_1, other, territories) is Reason.OUTSIDE_TERRITORY


def test_a_rep_cancels_only_an_order_it_captured() -> None:
    mine, theirs = order("O1", [("S1", 1)], rep_id="REP-1"), order("O1", [("S1", 1)], rep_id="REP-1")
    theirs["payload"]["rep_id"] = "REP-5"
    accepted = {
        ("D1", mine["payload"]["order_id"]): "REP-1",
        ("D1", theirs["payload"]["order_id"]): "REP-5",
    }
    territories = Territories(RepTerritory(frozenset({"D1"})), accepted)
    assert reason(REP_1, cancel(mine, "REP-1"), territories) is None
    assert reason(REP_1, cancel(theirs, "REP-1"), territories) is Reason.NOT_OWN_ORDER
    unknown = order("O1", [("S1", 1)], rep_id="REP-1")
    assert reason(REP_1, cancel(unknown, "REP-1"), territories) is Reason.UNKNOWN_ORDER
    # The rep's bound distributor and an admin may cancel any order of it.
    assert reason(CONNECTOR_D1, cancel(theirs, "erp-d1"), territories) is None
    assert reason(ADMIN, cancel(theirs, "admin"), Territories()) is None


def test_an_order_captured_in_the_same_batch_counts_as_known_but_never_takes_over_an_accepted_one() -> None:
    fresh, again = order("O1", [("S1", 1)], rep_id="REP-1"), order("O2", [("S1", 1)], rep_id="REP-1")
    accepted = {("D1", again["payload"]["order_id"]): "REP-5"}  # the order id was first accepted for REP-5
    reps = with_batch_orders(accepted, [parsed(fresh), parsed(again)])
    assert reps == {("D1", fresh["payload"]["order_id"]): "REP-1", ("D1", again["payload"]["order_id"]): "REP-5"}
    assert orders_acted_on([parsed(cancel(fresh, "REP-1")), parsed(again)]) == {("D1", fresh["payload"]["order_id"])}


@pytest.mark.parametrize(
    ("principal", "distributor", "expected"),
    [
        (CONNECTOR_D1, "D1", None),
        (CONNECTOR_D1, "D2", Reason.DISTRIBUTOR_NOT_BOUND),
        (Principal(Role.CONNECTOR, "erp-new"), "D1", Reason.DISTRIBUTOR_NOT_BOUND),  # bound to none: writes none
        (DISTRIBUTOR_D1, "D1", None),
        (DISTRIBUTOR_D1, "D2", Reason.DISTRIBUTOR_NOT_BOUND),
        (ADMIN, "D2", None),
    ],
)
def test_a_connector_or_distributor_writes_only_for_its_bound_distributors(
    principal: Principal, distributor: str, expected: Reason | None
) -> None:
    count = stock_count(datetime.now(UTC).isoformat(), distributor_id=distributor)
    invoiced = invoice(datetime.now(UTC).date().isoformat(), distributor_id=distributor)
    assert reason(principal, count, Territories()) is expected
    assert reason(principal, invoiced, Territories()) is expected


@pytest.mark.parametrize("principal", [REP_1, ADMIN, CONNECTOR_D1])
def test_a_device_bound_token_posts_only_as_its_device(principal: Principal) -> None:
    raw = order("O1", [("S1", 1)], rep_id="REP-1") | {"actor": principal.subject}
    if principal.role is Role.CONNECTOR:
        raw = stock_count(datetime.now(UTC).isoformat()) | {"actor": principal.subject}
    bound = Principal(principal.role, principal.subject, "phone-1", principal.distributors)
    assert violation(principal, raw) is None  # unbound: any source
    assert violation(bound, raw) == "source 'test-device' is not the token's device 'phone-1'"
    assert violation(bound, raw | {"source": "phone-1"}) is None
