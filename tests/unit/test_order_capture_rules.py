"""order-capture's pure rules: who may post what, per-event validation, and batch results."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from order_capture.domain.batch import StoreOutcome, plan_batch, results_for
from order_capture.domain.clock import Window
from order_capture.domain.fingerprint import accepted_form, content_hash
from order_capture.domain.policy import violation
from order_capture.domain.validation import (
    KnownMasters,
    Reason,
    Rejection,
    check_references,
    parse,
    references_of,
)
from order_capture.domain.visits import check_visit
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import EVENT_TYPES, Envelope, encode_event
from sellthrough_contracts.reference import SkuRegistered
from sellthrough_contracts.topics import REFERENCE
from sellthrough_contracts.trade import VisitRecorded
from sellthrough_runtime.auth import Principal, Role
from tests.support.brand import OUTLETS, REPS, SKUS, order, reference_events

NOW = datetime.now(UTC)  # events built by tests.support.brand are stamped relative to the real clock
TOLERANCE = timedelta(minutes=5)
KNOWN = KnownMasters(
    outlet_distributor=OUTLETS, skus=frozenset(SKUS), reps=frozenset(REPS), distributors=frozenset({"D1", "D2", "D3"})
)
REP_1 = Principal(Role.REP, "REP-1")
WINDOW = Window(NOW, timedelta(days=400), TOLERANCE, "admin")
"""An admin's window as of NOW, for events stamped relative to NOW."""


def current_window() -> Window:
    """An admin's window as of the call: events built by tests.support.brand are stamped by the real clock, and
    the suite may run this module many minutes after importing it (NOW)."""
    return Window(datetime.now(UTC), timedelta(days=400), TOLERANCE, "admin")


def parsed(raw: dict[str, object]) -> Envelope:
    outcome = parse(raw, current_window())
    assert isinstance(outcome, Envelope), outcome
    return outcome


@pytest.mark.parametrize(
    ("principal", "raw", "allowed"),
    [
        (REP_1, order("O1", [("S1", 1)]), True),
        (REP_1, order("O3", [("S1", 1)]), False),  # REP-2's outlet and actor
        (Principal(Role.ADMIN, "admin"), order("O3", [("S1", 1)]), True),
        (Principal(Role.CONNECTOR, "REP-1"), order("O1", [("S1", 1)]), False),
        (Principal(Role.ANALYST, "REP-1"), order("O1", [("S1", 1)]), False),
        (REP_1, reference_events()[0] | {"actor": "REP-1"}, False),
        (Principal(Role.ADMIN, "admin"), reference_events()[0], True),
        (REP_1, {"event_type": "NoSuchType", "actor": "REP-1"}, True),  # left to validation: unknown type
        (REP_1, {"actor": "REP-1"}, True),  # left to validation: no type at all
    ],
)
def test_policy(principal: Principal, raw: dict[str, object], allowed: bool) -> None:
    assert (violation(principal, raw) is None) is allowed


RULES: dict[str, set[Role]] = {
    # Reference data and scheme definitions: admins only.
    **{t: {Role.ADMIN} for t in REFERENCE.event_types | {"SchemeLaunched", "SchemeAmended", "SchemeEnded"}},
    # In the field: reps, and admins.
    "OrderCaptured": {Role.REP, Role.ADMIN},
    "VisitRecorded": {Role.REP, Role.ADMIN},
    # Attendance: a rep's own day (the rep named is the token's, checked below), or an admin's correction.
    "DayStarted": {Role.REP, Role.ADMIN},
    "DayEnded": {Role.REP, Role.ADMIN},
    # Beat plans: admins only; a regional manager reads.
    "BeatPlanned": {Role.ADMIN},
    # Either side may record them.
    "OrderCancelled": {Role.REP, Role.CONNECTOR, Role.ADMIN},
    "ReturnRecorded": {Role.REP, Role.CONNECTOR, Role.ADMIN},
    # ERP and distributor systems.
    **{t: {Role.CONNECTOR, Role.ADMIN} for t in ("PrimaryInvoiced", "OrderDelivered", "StockAdjusted")},
    # A distributor's own login counts its stock and claims its schemes.
    **{t: {Role.CONNECTOR, Role.DISTRIBUTOR, Role.ADMIN} for t in ("StockCounted", "SchemeClaimSubmitted")},
    # A distributor's invoices to retailers (DMS, Tally): its connector, or its own login uploading the export.
    "RetailerInvoiced": {Role.CONNECTOR, Role.DISTRIBUTOR, Role.ADMIN},
    # Derived: never over HTTP.
    **{t: set() for t in ("StockPositionChanged", "StockVarianceRecorded", "StockAlertRaised", "SchemeApplied")},
    "ClaimAssessed": set(),
    # Field verification: an admin sets or moves a geotag; order-capture derives each capture's verdict.
    "LocationChecked": set(),
}
"""Who may post each event type, written out here rather than read from the policy: a type added to the contracts
without a rule fails the test below."""


def test_every_event_type_has_a_rule() -> None:
    assert set(RULES) == set(EVENT_TYPES)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_role_posts_only_the_event_types_its_rule_lists(role: Role, event_type: str) -> None:
    principal = Principal(role, "REP-1")
    # Actor and rep are the token's own, so only the type decides.
    raw = {"event_type": event_type, "actor": "REP-1", "payload": {"rep_id": "REP-1"}}
    assert (violation(principal, raw) is None) is (role in RULES.get(event_type, set())), (role, event_type)


def test_an_event_within_the_clock_tolerance_is_accepted_and_beyond_it_rejected() -> None:
    just_inside = parse(order("O1", [("S1", 1)], occurred_at=NOW + TOLERANCE), WINDOW)
    beyond = parse(order("O1", [("S1", 1)], occurred_at=NOW + TOLERANCE + timedelta(seconds=1)), WINDOW)
    assert isinstance(just_inside, Envelope)
    assert isinstance(beyond, Rejection)
    assert beyond.reason is Reason.OCCURRED_IN_FUTURE


def test_a_schema_version_the_server_does_not_know_is_rejected_with_its_own_reason() -> None:
    for raw in (order("O1", [("S1", 1)]) | {"schema_version": 4}, sku_event() | {"schema_version": 4}):
        outcome = parse(raw, current_window())
        assert isinstance(outcome, Rejection)
        assert outcome.reason is Reason.UNKNOWN_SCHEMA_VERSION
        assert outcome.event_id == uuid.UUID(str(raw["event_id"]))
        assert f"schema_version {raw['schema_version']} is not known" in outcome.detail


def test_an_older_known_schema_version_is_accepted_in_the_current_shape() -> None:
    event = parsed(sku_event() | {"schema_version": 1})
    assert isinstance(event, SkuRegistered)
    assert (event.schema_version, event.payload.overstock_min_units, event.payload.currency) == (3, None, "INR")
    written = orjson.loads(accepted_form(event, NOW).value)
    assert written["schema_version"] == 3


def sku_event() -> dict[str, Any]:
    return next(e for e in reference_events() if e["event_type"] == "SkuRegistered")


def test_invalid_fields_are_listed_by_path() -> None:
    raw = order("O1", [("S1", 1), ("S2", 1)])
    raw["payload"]["lines"][1]["quantity"] = 0
    raw["payload"]["outlet_id"] = ""
    outcome = parse(raw, current_window())
    assert isinstance(outcome, Rejection)
    assert outcome.reason is Reason.INVALID_FIELDS
    assert {e["field"] for e in outcome.errors} == {"payload.lines.1.quantity", "payload.outlet_id"}
    assert outcome.event_id == uuid.UUID(raw["event_id"])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (order("O1", [("S1", 1)]), None),
        (
            order("O1", [("S1", 1)]) | {"payload": order("O1", [("S1", 1)])["payload"] | {"outlet_id": "O9"}},
            Reason.UNKNOWN_OUTLET,
        ),
        (order("O1", [("S1", 1)], rep_id="REP-9"), Reason.UNKNOWN_REP),
        (
            order("O1", [("S1", 1)]) | {"payload": order("O1", [("S1", 1)])["payload"] | {"distributor_id": "D3"}},
            Reason.OUTLET_NOT_SERVED_BY_DISTRIBUTOR,
        ),
    ],
)
def test_reference_checks(raw: dict[str, object], reason: Reason | None) -> None:
    rejection = check_references(parsed(raw), KNOWN)
    assert (rejection.reason if rejection else None) is reason


def test_unknown_skus_are_all_named() -> None:
    raw = order("O1", [("S1", 1)])
    raw["payload"]["lines"] += [
        {"sku_id": "S-X", "quantity": 1, "unit_price": "1"},
        {"sku_id": "S-Y", "quantity": 1, "unit_price": "1"},
    ]
    rejection = check_references(parsed(raw), KNOWN)
    assert rejection is not None
    assert rejection.reason is Reason.UNKNOWN_SKU
    assert rejection.detail == "SKUs not registered: S-X, S-Y"


def test_references_of_collects_every_master_a_batch_names() -> None:
    refs = references_of([parsed(order("O1", [("S1", 1), ("S3", 2)])), parsed(order("O4", [("S2", 1)]))])
    assert refs.outlets == {"O1", "O4"}
    assert refs.skus == {"S1", "S2", "S3"}
    assert refs.reps == {"REP-1", "REP-3"}


def test_batch_results_keep_order_and_mark_repeats_and_reused_ids() -> None:
    first = order("O1", [("S1", 1)])
    repeat = dict(first)
    reused_in_batch = first | {"payload": first["payload"] | {"order_id": "ORD-OTHER"}}
    stored_before = order("O2", [("S2", 1)])
    reused_earlier = order("O1", [("S3", 1)])
    invalid = order("O1", [("S1", 1)]) | {"event_type": "Nope"}
    plan = plan_batch(
        [parse(r, current_window()) for r in (first, repeat, reused_in_batch, stored_before, reused_earlier, invalid)]
    )
    stored = StoreOutcome(
        accepted={uuid.UUID(first["event_id"])},
        duplicates={uuid.UUID(stored_before["event_id"])},
        reused={uuid.UUID(reused_earlier["event_id"])},
    )

    batch = results_for(plan, {}, stored)

    assert [(r.index, r.status, r.reason) for r in batch.results] == [
        (0, "accepted", None),
        (1, "duplicate", None),
        (2, "rejected", "event_id_reused"),
        (3, "duplicate", None),
        (4, "rejected", "event_id_reused"),
        (5, "rejected", "unknown_event_type"),
    ]
    assert (batch.accepted, batch.duplicate, batch.rejected) == (1, 2, 3)


def test_a_repeat_of_a_refused_event_is_refused_for_the_same_reason() -> None:
    bad = order("O1", [("S1", 1)], rep_id="REP-9")
    plan = plan_batch([parse(bad, current_window()), parse(dict(bad), current_window())])
    refusal = Rejection(Reason.UNKNOWN_REP, "rep 'REP-9' is not registered", uuid.UUID(bad["event_id"]))

    batch = results_for(plan, {refusal.event_id: refusal}, StoreOutcome(set(), set(), set()))  # type: ignore[dict-item]

    assert [(r.status, r.reason) for r in batch.results] == [("rejected", "unknown_rep")] * 2


def _client_set_server_fields() -> dict[str, object]:
    """An order whose client filled in the fields the server sets (recorded_at, key) and a causation id."""
    raw = order("O2", [("S2", 7), ("S1", 1)])
    return raw | {"recorded_at": "2020-01-01T00:00:00+02:00", "key": "client-key", "causation_id": str(uuid.uuid4())}


@pytest.mark.parametrize(
    "raw",
    [
        order("O1", [("S1", 2), ("S3", 1)]),
        order("O4", [("S2", 1)]) | {"schema_version": 1, "source": "Gerät-ü"},  # non-ASCII survives as is
        _client_set_server_fields(),
        *reference_events()[::3],
    ],
)
@pytest.mark.parametrize(
    "recorded_at",
    [
        datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 9, 30, 5, 123456, tzinfo=UTC),
        datetime(2026, 11, 1, 15, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 11, 1, 15, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),  # == the first, other offset
    ],
)
def test_the_accepted_form_is_the_content_hash_and_the_encoded_stamped_event(
    raw: dict[str, object], recorded_at: datetime
) -> None:
    """The single-dump path must give byte for byte what the contracts give: stored hashes decide retries,
    and the value is what consumers decode."""
    event = parsed(raw)
    stamped = event.stamped(recorded_at)

    form = accepted_form(event, recorded_at)

    assert form.event is event
    assert form.content_hash == content_hash(event) == content_hash(stamped)
    assert form.value == encode_event(stamped)
    assert form.key == stamped.key == event.partition_key()


def _priced(raw: dict[str, Any], price: object) -> dict[str, Any]:
    return {**raw, "payload": {**raw["payload"], "lines": [{**raw["payload"]["lines"][0], "unit_price": price}]}}


def test_decimal_spellings_of_one_value_fingerprint_alike_and_other_values_do_not() -> None:
    raw = order("O1", [("S1", 2)])
    spellings = [parsed(_priced(raw, price)) for price in ("12.50", "12.5000", 12.5, "12.5", "1.25E+1")]
    other = parsed(_priced(raw, "12.51"))

    assert len({content_hash(e) for e in spellings}) == 1
    assert content_hash(other) != content_hash(spellings[0])
    assert accepted_form(spellings[1], NOW).content_hash == content_hash(spellings[0])
    # The wire form keeps what the client sent.
    assert b'"unit_price":"12.5000"' in accepted_form(spellings[1], NOW).value


def test_an_order_fingerprints_alike_under_another_event_id_but_its_content_hash_differs() -> None:
    raw = order("O1", [("S1", 2)])
    first = accepted_form(parsed(raw), NOW)
    again = accepted_form(parsed({**raw, "event_id": str(uuid.uuid4())}), NOW)

    assert first.business_key == again.business_key == ("OrderCaptured", "D1", raw["payload"]["order_id"])
    assert first.body_hash == again.body_hash
    assert first.content_hash != again.content_hash


def test_windows_are_read_from_the_environment_per_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELLTHROUGH_OCCURRED_AT_MAX_AGE_DAYS_REP", "7")
    settings = OrderCaptureSettings()

    assert settings.occurred_at_max_age(Role.REP) == timedelta(days=7)
    assert settings.occurred_at_max_age(Role.CONNECTOR) == timedelta(days=400)
    assert settings.occurred_at_max_age(Role.ADMIN) == timedelta(days=400)


@pytest.mark.parametrize(
    ("age", "max_age_days", "accepted"),
    [(timedelta(days=44), 45, True), (timedelta(days=45, seconds=1), 45, False), (timedelta(days=399), 400, True)],
)
def test_occurred_at_is_accepted_within_the_window_only(age: timedelta, max_age_days: int, accepted: bool) -> None:
    window = Window(NOW, timedelta(days=max_age_days), TOLERANCE, "rep")
    outcome = parse(order("O1", [("S1", 1)], occurred_at=NOW - age), window)
    assert isinstance(outcome, Envelope) is accepted
    if not accepted:
        assert isinstance(outcome, Rejection)
        assert outcome.reason is Reason.OCCURRED_TOO_EARLY


def test_the_2000_floor_holds_whatever_the_window() -> None:
    window = Window(NOW, timedelta(days=365_000), TOLERANCE, "admin")
    before = parse(order("O1", [("S1", 1)], occurred_at=datetime(1999, 12, 31, 23, 59, tzinfo=UTC)), window)
    at = parse(order("O1", [("S1", 1)], occurred_at=datetime(2000, 1, 1, tzinfo=UTC)), window)
    assert isinstance(before, Rejection)
    assert before.reason is Reason.OCCURRED_TOO_EARLY
    assert isinstance(at, Envelope)


def test_every_control_character_in_every_string_is_named_once_by_path() -> None:
    raw = order("O1", [("S1", 1)]) | {"source": "a\x00b", "actor": "REP\x7f"}
    raw["payload"]["lines"][0]["sku_id"] = "S\x1f1"
    outcome = parse(raw, current_window())
    assert isinstance(outcome, Rejection)
    assert outcome.reason is Reason.INVALID_FIELDS
    assert [e["field"] for e in outcome.errors] == ["source", "actor", "payload.lines.0.sku_id"]
    assert "U+0000" in outcome.detail


def test_an_event_nested_too_deeply_to_validate_is_rejected_not_a_crash() -> None:
    raw = order("O1", [("S1", 1)])
    nested: object = "x"
    for _ in range(300):
        nested = [nested]
    raw["payload"]["gps"] = nested
    outcome = parse(raw, current_window())
    assert isinstance(outcome, Rejection)
    assert outcome.reason is Reason.INVALID_FIELDS
    assert outcome.event_id == uuid.UUID(raw["event_id"])


@pytest.mark.parametrize("event_type", ["DayStarted", "DayEnded"])
def test_a_rep_starts_and_ends_only_its_own_day(event_type: str) -> None:
    own = {"event_type": event_type, "actor": "REP-1", "payload": {"rep_id": "REP-1"}}
    other = {"event_type": event_type, "actor": "REP-1", "payload": {"rep_id": "REP-2"}}
    assert violation(REP_1, own) is None
    assert violation(REP_1, other) == "payload.rep_id 'REP-2' is not the token's rep 'REP-1'"


def visit_event(productive: bool, reason: str | None) -> Envelope:
    return parsed(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "VisitRecorded",
            "occurred_at": datetime.now(UTC).isoformat(),
            "source": "test",
            "actor": "REP-1",
            "payload": {
                "visit_id": "V1",
                "outlet_id": "O1",
                "distributor_id": "D1",
                "rep_id": "REP-1",
                "productive": productive,
                "no_order_reason": reason,
            },
        }
    )


@pytest.mark.parametrize(
    ("productive", "reason", "expected"),
    [
        (True, None, None),
        (False, "shop closed", None),
        (False, "Shop Closed", None),
        (False, None, Reason.NO_ORDER_REASON_REQUIRED),
        (False, "it was raining", Reason.UNKNOWN_NO_ORDER_REASON),
        (True, "it was raining", Reason.UNKNOWN_NO_ORDER_REASON),
    ],
)
def test_a_visit_without_an_order_needs_one_of_the_configured_reasons(
    productive: bool, reason: str | None, expected: Reason | None
) -> None:
    outcome = check_visit(visit_event(productive, reason), OrderCaptureSettings().no_order_reasons)
    assert (outcome.reason if outcome else None) is expected


def test_a_version_1_visit_reads_as_version_2_without_check_in_or_out() -> None:
    raw = orjson.loads(encode_event(visit_event(False, "shop closed")))
    for key in ("checked_in_at", "checked_out_at", "check_out_gps", "mock_location"):
        del raw["payload"][key]
    event = parsed(raw | {"schema_version": 1})
    assert isinstance(event, VisitRecorded)
    assert event.schema_version == 2
    payload = event.payload
    assert (payload.checked_in_at, payload.checked_out_at, payload.mock_location) == (None, None, False)


def test_a_beat_plan_naming_an_unknown_outlet_is_rejected() -> None:
    plan = parsed(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "BeatPlanned",
            "occurred_at": datetime.now(UTC).isoformat(),
            "source": "test",
            "actor": "admin",
            "payload": {"rep_id": "REP-1", "plan_date": "2026-10-01", "outlet_ids": ["O2", "O1", "O99"]},
        }
    )
    assert "O99" in references_of([plan]).outlets
    outcome = check_references(plan, KNOWN)
    assert outcome is not None
    assert outcome.reason is Reason.UNKNOWN_OUTLET


def test_a_visit_checked_out_before_it_checked_in_is_invalid() -> None:
    raw = orjson.loads(encode_event(visit_event(True, None)))
    now = datetime.now(UTC)
    raw["payload"] |= {
        "checked_in_at": (now - timedelta(minutes=5)).isoformat(),
        "checked_out_at": (now - timedelta(minutes=10)).isoformat(),
    }
    outcome = parse(raw, current_window())
    assert isinstance(outcome, Rejection)
    assert outcome.reason is Reason.INVALID_FIELDS
    assert "checked_out_at is before checked_in_at" in outcome.detail
