"""order-capture's location verdict (order_capture/geo.py): great-circle distance and the verdict rules; and an order
accepted as OrderCaptured version 1 (before mock_location) still recognised as a retry."""

import hashlib
import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from order_capture.domain.clock import Window
from order_capture.domain.fingerprint import content_hash, earlier_version_hashes
from order_capture.domain.geo import Fix, Point, Rule, haversine_m, judge
from order_capture.domain.validation import parse
from order_capture.domain.verification import OutletPlace, check_locations
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import VisitRecorded
from tests.support.brand import order

OUTLET = Point(28.6139, 77.2090)  # New Delhi
RULE = Rule(radius_m=100.0, max_accuracy_m=100.0)


def north_of(point: Point, metres: float) -> Point:
    """A point `metres` due north: one degree of latitude is R * pi / 180 metres on the haversine sphere."""
    return Point(point.lat + metres / (6_371_008.8 * math.pi / 180), point.lon)


def test_haversine_matches_known_distances() -> None:
    # New Delhi to Mumbai: about 1,153 km by great circle.
    assert haversine_m(OUTLET, Point(19.0760, 72.8777)) == pytest.approx(1_153_000, rel=0.005)
    # A quarter of the equator.
    assert haversine_m(Point(0, 0), Point(0, 90)) == pytest.approx(6_371_008.8 * math.pi / 2)
    assert haversine_m(OUTLET, OUTLET) == 0
    # Antipodes: rounding must not leave asin's domain.
    assert haversine_m(Point(10, 20), Point(-10, -160)) == pytest.approx(6_371_008.8 * math.pi)


@pytest.mark.parametrize(
    ("fix", "verdict"),
    [
        (Fix(north_of(OUTLET, 40), 10), "on_site"),
        (Fix(north_of(OUTLET, 109), 10), "on_site"),  # radius plus accuracy
        (Fix(north_of(OUTLET, 111), 10), "off_site"),
        (Fix(north_of(OUTLET, 5_000), 12), "off_site"),
        (Fix(Point(19.0760, 72.8777), 12), "off_site"),  # Mumbai, ~1,150 km
        (Fix(Point(19.0760, 72.8777), 5_000), "off_site"),  # certainly away, however coarse
        (Fix(north_of(OUTLET, 40), 500), "low_accuracy"),
        (Fix(north_of(OUTLET, 40), None), "low_accuracy"),
        (Fix(None, None), "no_gps"),
        (Fix(north_of(OUTLET, 40), 10, mock_location=True), "mock_location"),
        (Fix(None, None, mock_location=True), "mock_location"),
    ],
)
def test_verdicts(fix: Fix, verdict: str) -> None:
    assert judge(fix, OUTLET, RULE).verdict == verdict


def test_an_outlet_without_a_geotag_or_at_null_island_is_not_geotagged() -> None:
    fix = Fix(north_of(OUTLET, 40), 10)
    assert judge(fix, None, RULE).verdict == "outlet_not_geotagged"
    assert judge(fix, Point(0, 0), RULE).verdict == "outlet_not_geotagged"
    assert judge(fix, Point(0, 0), RULE).distance_m is None


def test_the_verdict_carries_distance_accuracy_and_radius() -> None:
    v = judge(Fix(north_of(OUTLET, 5_000), 12), OUTLET, RULE)
    assert v.distance_m == pytest.approx(5_000, abs=1)
    assert (v.accuracy_m, v.radius_m, v.verified) == (12, 100.0, False)


def test_the_radius_is_set_per_channel_and_rejection_is_opt_in() -> None:
    settings = OrderCaptureSettings(
        geo_radius_m_by_channel={"modern trade": 300.0}, geo_reject_off_site_channels=["chemist"]
    )
    fix = Fix(north_of(OUTLET, 250), 10)
    assert judge(fix, OUTLET, settings.geo_rule("grocery")).verdict == "off_site"
    assert judge(fix, OUTLET, settings.geo_rule("modern trade")).verdict == "on_site"
    assert settings.rejects_off_site("chemist")
    assert not settings.rejects_off_site("grocery")
    assert not settings.rejects_off_site(None)


def test_an_order_accepted_as_version_1_is_still_a_retry_after_the_upgrade() -> None:
    raw = order("O1", [("S1", 2)])
    raw["schema_version"] = 1
    event = parse(raw, Window(datetime.now(UTC), timedelta(days=400), timedelta(minutes=5), "admin"))
    assert isinstance(event, Envelope)
    assert event.schema_version == 3
    # What version 1 fingerprinted: its own document (no mock_location, no currency), decimals in their shortest
    # form.
    v1 = {k: v for k, v in event.model_dump(mode="json").items() if k not in ("recorded_at", "key", "event_id")}
    v1["schema_version"] = 1
    v1["payload"] = {k: v for k, v in v1["payload"].items() if k not in ("mock_location", "currency")}
    v1["payload"]["lines"] = [{**line, "unit_price": str(Decimal(line["unit_price"]).normalize())}
                              for line in v1["payload"]["lines"]]  # fmt: skip
    body = hashlib.sha256(orjson.dumps(v1, option=orjson.OPT_SORT_KEYS)).digest()
    assert hashlib.sha256(event.event_id.bytes + body).digest() in earlier_version_hashes(event)
    assert content_hash(event) not in earlier_version_hashes(event)
    mocked = event.model_copy(update={"payload": event.payload.model_copy(update={"mock_location": True})})  # type: ignore[attr-defined]
    # Version 1 could not say the position was mocked: only its version 2 form (two fingerprints) is left.
    assert len(earlier_version_hashes(mocked)) == 2
    assert not earlier_version_hashes(event) <= earlier_version_hashes(mocked)
    dollars = event.model_copy(update={"payload": event.payload.model_copy(update={"currency": "USD"})})  # type: ignore[attr-defined]
    assert earlier_version_hashes(dollars) == set()  # no earlier version could say another currency


def visit_v2(mock_location: bool) -> VisitRecorded:
    """A version 2 visit: at the outlet at check-in, 5 km away at check-out."""
    check_in, check_out = north_of(OUTLET, 10), north_of(OUTLET, 5_000)
    return VisitRecorded.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": "2026-10-01T10:00:00+00:00",
            "source": "device-REP-1",
            "actor": "REP-1",
            "payload": {
                "visit_id": "V1",
                "outlet_id": "O1",
                "distributor_id": "D1",
                "rep_id": "REP-1",
                "productive": True,
                "gps": {"lat": check_in.lat, "lon": check_in.lon, "accuracy_m": 8},
                "checked_in_at": "2026-10-01T10:00:00+00:00",
                "checked_out_at": "2026-10-01T10:20:00+00:00",
                "check_out_gps": {"lat": check_out.lat, "lon": check_out.lon, "accuracy_m": 8},
                "mock_location": mock_location,
            },
        }
    )


def test_a_visit_is_judged_at_its_check_in_and_by_its_mock_location_flag() -> None:
    places = {"O1": OutletPlace(channel=None, geotag=OUTLET)}
    settings = OrderCaptureSettings()
    for mock, verdict in ((False, "on_site"), (True, "mock_location")):
        visit = visit_v2(mock)
        checked = check_locations([visit], places, settings)[visit.event_id]
        assert checked.verdict.verdict == verdict
