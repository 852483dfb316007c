"""Who may write where, against real order-capture, scheme-engine and query-api processes: a rep only at outlets of
its distributors and beats, a cancellation only by the order's own rep or a token bound to its distributor, a
connector and a distributor's login only for their bound distributors, a device-bound token only as its device;
and a claim id submitted again becomes revision 2 with revision 1 kept, as query-api shows."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from sellthrough_devstack.tokens import issue_tokens
from sellthrough_runtime.auth import Role
from tests.conftest import Infra, Tokens
from tests.support.brand import (
    event,
    invoice,
    order,
    outlet_on_beat,
    reference_events,
    rep_with_territory,
    stock_count,
)
from tests.support.services import running_services
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)

# Beyond the test brand: D3's outlets O6 (beat B-1) and O7 (beat B-2); REP-4 covers D3 and D2 on beat B-1 only,
# REP-5 covers D1 and also D2, every beat.
TERRITORY_EVENTS = [outlet_on_beat(o, "D3", beat, lat=12.9, lon=77.6) for o, beat in (("O6", "B-1"), ("O7", "B-2"))] + [
    rep_with_territory("REP-4", "D3", also_covers=("D2",), beat_ids=("B-1",)),
    rep_with_territory("REP-5", "D1", also_covers=("D2",)),
]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """The shared test tokens, and reps with beats, a connector bound to nothing and a phone-bound rep token."""
    directory: Path = tmp_path_factory.mktemp("territory-tokens")
    issued = issue_tokens(
        [
            ("admin", Role.ADMIN, "admin"),
            ("analyst", Role.ANALYST, "analyst"),
            ("connector", Role.CONNECTOR, "erp-1", {"distributors": ["D1", "D2", "D3"]}),
            ("connector_d1", Role.CONNECTOR, "erp-d1", {"distributors": ["D1"]}),
            ("connector_unbound", Role.CONNECTOR, "erp-new"),
            ("distributor1", Role.DISTRIBUTOR, "D1"),
            ("rep1", Role.REP, "REP-1"),
            ("rep2", Role.REP, "REP-2"),
            ("rep4", Role.REP, "REP-4"),
            ("rep5", Role.REP, "REP-5"),
            ("rep1_phone", Role.REP, "REP-1", {"device_id": "phone-1"}),
        ],
        directory / "tokens.json",
        directory / "tokens.env",
    )
    return Tokens(directory / "tokens.json", issued)


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "scheme-engine", "query-api"]) as running:
        masters = reference_events() + TERRITORY_EVENTS
        assert_results(post(running, tokens, "admin", masters), ["accepted"] * len(masters))
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, masters)
        yield running


def post(services: dict[str, ServiceProcess], tokens: Tokens, who: str, events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{services['order-capture'].url}/v1/events", json={"events": events}, headers=tokens.header(who), timeout=30
    )


def assert_results(response: httpx.Response, expected: list[str]) -> None:
    """Each event's status, or its rejection reason."""
    assert response.status_code == 200, response.text
    got = [r["reason"] if r["status"] == "rejected" else r["status"] for r in response.json()["results"]]
    assert got == expected, response.json()


def as_rep(raw: dict[str, Any], rep: str, **payload: str) -> dict[str, Any]:
    return {**raw, "actor": rep, "payload": {**raw["payload"], "rep_id": rep, **payload}}


def order_at_d3(outlet: str, rep: str) -> dict[str, Any]:
    """An order at one of the outlets this module adds to D3."""
    return as_rep(order("O4", [("S1", 1)]), rep, outlet_id=outlet)


def cancel(raw_order: dict[str, Any], actor: str) -> dict[str, Any]:
    p = raw_order["payload"]
    return event(
        "OrderCancelled",
        {"order_id": p["order_id"], "outlet_id": p["outlet_id"], "distributor_id": p["distributor_id"], "reason": "x"},
        actor=actor,
    )


def test_a_rep_writes_only_at_outlets_of_its_distributors_and_the_rest_of_its_batch_goes_in(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    at_home, next_door = order("O1", [("S1", 2)], rep_id="REP-1"), order("O3", [("S1", 2)], rep_id="REP-1")
    giant_return = event(
        "ReturnRecorded",
        {
            "return_id": f"RET-{uuid.uuid4().hex[:8]}",
            "distributor_id": "D2",
            "outlet_id": "O3",
            "direction": "from_retailer",
            "reason": "unsold",
            "lines": [{"sku_id": "S1", "quantity": 1_000_000}],
        },
        actor="REP-1",
    )
    assert_results(
        post(services, tokens, "rep1", [next_door, at_home, giant_return]),
        ["outside_territory", "accepted", "outside_territory"],
    )


def test_a_rep_with_beats_writes_only_on_them_and_an_extra_distributor_widens_a_territory(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    on_beat, off_beat = order_at_d3("O6", "REP-4"), order_at_d3("O7", "REP-4")
    # O3 is D2's, which REP-4 covers, but it is on no beat of REP-4's.
    assert_results(
        post(services, tokens, "rep4", [on_beat, off_beat, as_rep(order("O3", [("S1", 1)]), "REP-4")]),
        ["accepted", "outside_territory", "outside_territory"],
    )
    # REP-5 works D1 and also D2, every beat; not D3.
    assert_results(
        post(
            services,
            tokens,
            "rep5",
            [as_rep(order(o, [("S1", 1)]), "REP-5") for o in ("O1", "O3", "O4")],
        ),
        ["accepted", "accepted", "outside_territory"],
    )


def test_a_rep_cancels_only_its_own_orders(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    mine, theirs = order("O1", [("S1", 3)], rep_id="REP-1"), order("O1", [("S1", 3)], rep_id="REP-1")
    assert_results(post(services, tokens, "rep1", [mine, theirs]), ["accepted", "accepted"])
    # REP-2 (D2) is refused another rep's order at D1 twice over: the outlet is outside its territory too.
    assert_results(post(services, tokens, "rep2", [cancel(theirs, "REP-2")]), ["outside_territory"])
    # REP-5 covers D1, so only ownership stops it.
    assert_results(post(services, tokens, "rep5", [cancel(theirs, "REP-5")]), ["not_own_order"])
    never_posted = order("O1", [("S1", 3)], rep_id="REP-1")
    taken_and_dropped = order("O2", [("S2", 1)], rep_id="REP-1")
    assert_results(
        post(
            services,
            tokens,
            "rep1",
            [
                cancel(mine, "REP-1"),
                cancel(never_posted, "REP-1"),
                taken_and_dropped,
                cancel(taken_and_dropped, "REP-1"),
            ],
        ),
        ["accepted", "unknown_order", "accepted", "accepted"],
    )
    # The order's distributor (a bound connector) and an admin may cancel it.
    assert_results(post(services, tokens, "connector_d1", [cancel(theirs, "erp-d1")]), ["accepted"])


def test_a_connector_writes_only_for_the_distributors_it_is_bound_to(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    today = NOW.date().isoformat()
    d1, d2 = invoice(today, distributor_id="D1"), invoice(today, distributor_id="D2")
    as_d1 = [{**e, "actor": "erp-d1"} for e in (d2, d1)]
    assert_results(post(services, tokens, "connector_d1", as_d1), ["distributor_not_bound", "accepted"])
    delivered_elsewhere = order("O3", [("S1", 1)])
    assert_results(post(services, tokens, "rep2", [delivered_elsewhere]), ["accepted"])
    delivery = event(
        "OrderDelivered",
        {
            "delivery_id": f"DEL-{uuid.uuid4().hex[:8]}",
            "order_id": delivered_elsewhere["payload"]["order_id"],
            "outlet_id": "O3",
            "distributor_id": "D2",
            "lines": [{"sku_id": "S1", "quantity": 1}],
        },
        actor="erp-d1",
    )
    assert_results(post(services, tokens, "connector_d1", [delivery]), ["distributor_not_bound"])
    assert_results(post(services, tokens, "connector", [{**delivery, "actor": "erp-1"}]), ["accepted"])
    # A connector bound to no distributor writes for none (deny by default).
    assert_results(
        post(services, tokens, "connector_unbound", [{**invoice(today), "actor": "erp-new"}]), ["distributor_not_bound"]
    )


def test_a_distributor_login_counts_and_claims_for_itself_only(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    counted_at = (NOW - timedelta(hours=1)).isoformat()
    counts = [{**stock_count(counted_at, distributor_id=d), "actor": "D1"} for d in ("D2", "D1")]
    assert_results(post(services, tokens, "distributor1", counts), ["distributor_not_bound", "accepted"])
    claim = {**submitted_claim("CLM-OWN", "D1", "5.00", NOW - timedelta(hours=1)), "actor": "D1"}
    assert_results(post(services, tokens, "distributor1", [claim]), ["accepted"])


def test_a_device_bound_token_posts_only_as_its_device(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    taken = order("O1", [("S1", 1)], rep_id="REP-1")  # source "test-device"
    refused = post(services, tokens, "rep1_phone", [taken])
    assert refused.status_code == 403, refused.text
    assert "phone-1" in refused.json()["detail"]
    assert_results(post(services, tokens, "rep1_phone", [{**taken, "source": "phone-1"}]), ["accepted"])


def submitted_claim(claim_id: str, distributor: str, amount: str, at: datetime) -> dict[str, Any]:
    return event(
        "SchemeClaimSubmitted",
        {
            "claim_id": claim_id,
            "scheme_id": "SCH-NONE",
            "distributor_id": distributor,
            "period_from": (NOW - timedelta(days=30)).isoformat(),
            "period_to": NOW.isoformat(),
            "claimed_amount": amount,
        },
        actor="erp-1",
        occurred_at=at,
    )


async def test_a_resubmitted_claim_is_revision_2_with_revision_1_kept(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    first = submitted_claim("CLM-R", "D2", "40.00", NOW - timedelta(hours=3))
    corrected = submitted_claim("CLM-R", "D2", "25.00", NOW - timedelta(hours=2))
    assert_results(post(services, tokens, "connector", [first]), ["accepted"])
    assert_results(post(services, tokens, "connector", [corrected]), ["accepted"])

    async def claims() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=services["query-api"].url, headers=tokens.header("admin")) as client:
            response = await client.get("/v1/claims", params={"distributor_id": "D2"}, timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    listed = await eventually(
        claims,
        lambda c: [r["claim_revision"] for r in c["claims"] if r["claim_id"] == "CLM-R"] == [2],
        timeout=60,
        what="the claim's second revision assessed",
    )
    (claim,) = [r for r in listed["claims"] if r["claim_id"] == "CLM-R"]
    assert Decimal(claim["claimed"]) == Decimal("25.00")
    assert [
        (s["revision"], s["event_id"], Decimal(s["claimed_amount"]), s["current"]) for s in claim["submissions"]
    ] == [
        (1, first["event_id"], Decimal("40.00"), False),
        (2, corrected["event_id"], Decimal("25.00"), True),
    ]
