"""order-capture writes a LocationChecked straight to its wire form (verification.location_checked); it must be the
very bytes the contract model would encode, for every verdict, with and without GPS, channel and device clock."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from order_capture.domain.geo import Verdict
from order_capture.domain.verification import _LOCATION_CHECKED, Checked, _location_checked_id, location_checked
from sellthrough_contracts import Envelope, encode_event, parse_event
from sellthrough_contracts.field import LocationChecked, LocationCheckedPayload
from tests.support.brand import order

VERDICTS = ["on_site", "off_site", "low_accuracy", "no_gps", "outlet_not_geotagged", "mock_location"]


def as_model(checked: Checked, recorded_at: datetime, skew: float | None) -> LocationChecked:
    """The LocationChecked as order-capture built it before: a validated model, stamped (the reference form)."""
    subject = checked.event
    payload = getattr(subject, "payload", None)
    gps = getattr(payload, "gps", None)
    v = checked.verdict
    return LocationChecked(
        event_id=uuid.uuid5(_LOCATION_CHECKED, str(subject.event_id)),
        occurred_at=recorded_at,
        recorded_at=recorded_at,
        source="order-capture",
        actor="order-capture",
        causation_id=subject.event_id,
        payload=LocationCheckedPayload(
            subject_event_id=subject.event_id,
            subject_event_type=subject.event_type,
            outlet_id=getattr(payload, "outlet_id", ""),
            distributor_id=getattr(payload, "distributor_id", ""),
            rep_id=getattr(payload, "rep_id", ""),
            device=subject.source,
            channel=checked.channel,
            verdict=v.verdict,
            distance_m=v.distance_m,
            lat=getattr(gps, "lat", None),
            lon=getattr(gps, "lon", None),
            accuracy_m=v.accuracy_m,
            radius_m=v.radius_m,
            sync_delay_s=round((recorded_at - subject.occurred_at).total_seconds(), 3),
            device_clock_skew_s=skew,
        ),
    ).stamped(recorded_at)


def subject(gps: dict[str, float] | None, minutes_ago: int) -> Envelope:
    raw = order("O1", [("S1", 2)])
    raw["occurred_at"] = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    raw["payload"]["gps"] = gps
    return parse_event(raw)


coordinates = st.fixed_dictionaries(
    {"lat": st.floats(-90, 90), "lon": st.floats(-180, 180)},
    optional={"accuracy_m": st.one_of(st.integers(0, 100_000), st.floats(0, 100_000))},
)
distances = st.one_of(st.none(), st.integers(0, 10**7), st.floats(0, 2e7))


@settings(max_examples=300, deadline=None)
@given(
    gps=st.one_of(st.none(), coordinates),
    verdict=st.sampled_from(VERDICTS),
    distance=distances,
    accuracy=st.one_of(st.none(), st.integers(0, 1000), st.floats(0, 1e5)),
    radius=st.one_of(st.integers(0, 5000), st.floats(0, 5000)),
    channel=st.one_of(st.none(), st.sampled_from(["grocery", "chemist", "Modern Trade"])),
    skew=st.one_of(st.none(), st.floats(-1e6, 1e6)),
    minutes_ago=st.integers(0, 60 * 24 * 30),
    offset_minutes=st.sampled_from([0, 330, -240]),
)
def test_the_record_is_what_the_contract_model_encodes(
    gps: dict[str, float] | None,
    verdict: str,
    distance: float | None,
    accuracy: float | None,
    radius: float,
    channel: str | None,
    skew: float | None,
    minutes_ago: int,
    offset_minutes: int,
) -> None:
    checked = Checked(subject(gps, minutes_ago), Verdict(verdict, distance, accuracy, radius), channel)  # type: ignore[arg-type]
    recorded_at = datetime.now(timezone(timedelta(minutes=offset_minutes)))
    record = location_checked(checked, recorded_at, skew)
    model = as_model(checked, recorded_at, skew)
    assert record.value == encode_event(model)
    assert (record.event_id, record.event_type, record.schema_version, record.partition_key, record.causation_id) == (
        model.event_id,
        model.event_type,
        model.schema_version,
        model.key,
        model.causation_id,
    )


@given(st.uuids())
def test_the_location_checked_id_is_the_uuid5_of_its_subject(subject_id: uuid.UUID) -> None:
    record = _location_checked_id(str(subject_id))
    assert record == uuid.uuid5(_LOCATION_CHECKED, str(subject_id))
    assert (record.version, record.variant) == (5, uuid.RFC_4122)
