"""Field verification against real order-capture and query-api processes: each order's location verdict at
accept time (on site, 5 km and 900 km off site, low accuracy, no GPS, outlet not geotagged, mocked), a channel
that opts in to refusing off-site orders, an admin's geotag moving an outlet, and the verdicts, geo-verified
shares, the off-site alert, sync delays and clock skew as query-api shows them."""

import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Infra, Tokens
from tests.support.brand import MASTERS_TIME, OUTLETS, event, order
from tests.support.services import running_with_reference_data

pytestmark = pytest.mark.e2e

SHOP = (28.6, 77.2)
"""Where the test brand's outlets are."""


def north(metres: float) -> tuple[float, float]:
    return (SHOP[0] + metres / (6_371_008.8 * math.pi / 180), SHOP[1])


def outlet(outlet_id: str, channel: str, lat: float, lon: float) -> dict[str, Any]:
    return event(
        "OutletRegistered",
        {
            "outlet_id": outlet_id,
            "name": f"Shop {outlet_id}",
            "distributor_id": "D1",
            "channel": channel,
            "outlet_class": "A",
            "location": {"lat": lat, "lon": lon, "accuracy_m": 5},
        },
        occurred_at=MASTERS_TIME,
    )


# O8: master data with the (0, 0) placeholder, so no geotag; O9: a chemist, a channel that refuses off-site orders;
# O10: a modern-trade store, whose radius is 1 km; O11: not geotagged either, for the proposals.
EXTRA_OUTLETS = [
    outlet("O8", "grocery", 0.0, 0.0),
    outlet("O9", "chemist", *SHOP),
    outlet("O10", "modern trade", *SHOP),
    outlet("O11", "grocery", 0.0, 0.0),
]
ENV = {
    "SELLTHROUGH_GEO_REJECT_OFF_SITE_CHANNELS": '["chemist"]',
    "SELLTHROUGH_GEO_RADIUS_M_BY_CHANNEL": '{"modern trade": 1000}',
}


def at(
    outlet_id: str,
    gps: tuple[float, float] | None,
    accuracy: float | None = 10.0,
    *,
    mock: bool = False,
    rep: str = "REP-1",
    ago: timedelta = timedelta(minutes=5),
) -> dict[str, Any]:
    raw = order("O1", [("S1", 1)], rep_id=rep, occurred_at=datetime.now(UTC) - ago)  # O1: D1, like O8..O10
    raw["payload"]["outlet_id"] = outlet_id
    raw["payload"]["distributor_id"] = OUTLETS.get(outlet_id, "D1")
    raw["payload"]["gps"] = None if gps is None else {"lat": gps[0], "lon": gps[1], "accuracy_m": accuracy}
    if mock:
        raw["payload"]["mock_location"] = True
        raw["schema_version"] = 2
    return raw


def visit(outlet_id: str, gps: tuple[float, float]) -> dict[str, Any]:
    payload = {
        "visit_id": f"V-{uuid.uuid4().hex[:8]}",
        "outlet_id": outlet_id,
        "distributor_id": OUTLETS[outlet_id],
        "rep_id": "REP-1",
        "productive": False,
        "no_order_reason": "shop closed",
        "gps": {"lat": gps[0], "lon": gps[1], "accuracy_m": 10.0},
    }
    return event("VisitRecorded", payload, actor="REP-1")


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, str]]:
    with running_with_reference_data(infra, tokens, ["order-capture", "query-api"], ENV) as running:
        url = running["order-capture"].url
        response = httpx.post(f"{url}/v1/events", json={"events": EXTRA_OUTLETS}, headers=tokens.header("admin"))
        assert response.json()["accepted"] == len(EXTRA_OUTLETS), response.text
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while httpx.get(f"{url}/v1/reference/status", headers=tokens.header("admin")).json()["outlets"] < 9:
            assert datetime.now(UTC) < deadline, "the extra outlets did not reach order-capture"
            time.sleep(0.2)
        yield {name: service.url for name, service in running.items()}


def post(
    services: dict[str, str], tokens: Tokens, events: list[dict[str, Any]], who: str = "admin", **body: Any
) -> dict[str, Any]:
    response = httpx.post(
        f"{services['order-capture']}/v1/events", json={"events": events, **body}, headers=tokens.header(who)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_each_order_gets_its_location_verdict_in_the_accept_response(services: dict[str, str], tokens: Tokens) -> None:
    cases = [
        (at("O1", north(30)), "on_site"),
        (at("O1", north(5_000)), "off_site"),
        (at("O1", (20.6, 77.2)), "off_site"),  # ~900 km south
        (at("O1", north(30), accuracy=400), "low_accuracy"),
        (at("O1", None), "no_gps"),
        (at("O8", SHOP), "outlet_not_geotagged"),
        (at("O1", north(30), mock=True), "mock_location"),
        (at("O10", north(800)), "on_site"),  # the modern-trade radius
        (visit("O1", north(5_000)), "off_site"),  # a visit is judged alike
    ]
    result = post(services, tokens, [raw for raw, _ in cases], who="rep1")
    assert result["accepted"] == len(cases), result
    verdicts = [r["location"]["verdict"] for r in result["results"]]
    assert verdicts == [v for _, v in cases]
    five_km = result["results"][1]["location"]
    assert five_km["distance_m"] == pytest.approx(5_000, abs=5)
    assert (five_km["accuracy_m"], five_km["radius_m"]) == (10.0, 100.0)
    assert result["results"][2]["location"]["distance_m"] == pytest.approx(890_000, rel=0.01)
    assert result["results"][4]["location"]["distance_m"] is None


def test_a_channel_that_opts_in_refuses_off_site_orders_and_others_only_record_them(
    services: dict[str, str], tokens: Tokens
) -> None:
    off_site, on_site = at("O9", north(5_000)), at("O9", north(20))
    result = post(services, tokens, [off_site, on_site], who="rep1")
    refused, accepted = result["results"]
    assert (refused["status"], refused["reason"]) == ("rejected", "off_site")
    assert refused["location"]["verdict"] == "off_site"
    assert "chemist" in refused["detail"]
    assert (accepted["status"], accepted["location"]["verdict"]) == ("accepted", "on_site")


def test_an_admin_geotag_moves_the_outlet_and_a_retry_keeps_its_answer(
    services: dict[str, str], tokens: Tokens
) -> None:
    first = at("O8", SHOP)
    assert post(services, tokens, [first], who="rep1")["results"][0]["location"]["verdict"] == "outlet_not_geotagged"
    # A rep may not geotag an outlet: only an admin confirms one.
    tag = event("OutletGeotagged", {"outlet_id": "O8", "lat": SHOP[0], "lon": SHOP[1], "accuracy_m": 8})
    refused = httpx.post(
        f"{services['order-capture']}/v1/events",
        json={"events": [tag | {"actor": "REP-1"}]},
        headers=tokens.header("rep1"),
    )
    assert refused.status_code == 403, refused.text
    assert post(services, tokens, [tag])["accepted"] == 1

    def geotagged() -> bool:
        verdict = post(services, tokens, [at("O8", SHOP)], who="rep1")["results"][0]["location"]["verdict"]
        return bool(verdict == "on_site")

    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while not geotagged():
        assert datetime.now(UTC) < deadline, "the geotag did not reach order-capture"
        time.sleep(0.2)
    retry = post(services, tokens, [first], who="rep1")["results"][0]
    assert retry["status"] == "duplicate"


def test_the_batch_device_time_gives_the_clock_skew(services: dict[str, str], tokens: Tokens) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    result = post(services, tokens, [at("O1", north(10))], who="rep1", device_time=ahead)
    assert result["device_clock_skew_s"] == pytest.approx(600, abs=30)
    # A number would pass pydantic as a Unix timestamp; the document offers only a date-time string (or null).
    for wrong in ("yesterday", 1.5):
        bad = httpx.post(
            f"{services['order-capture']}/v1/events",
            json={"events": [at("O1", north(10))], "device_time": wrong},
            headers=tokens.header("rep1"),
        )
        assert bad.status_code == 422
        assert bad.json()["type"].endswith("invalid-device-time")


def field_order(outlet_id: str, rep: str, device: str, metres_away: float, ago_minutes: int) -> dict[str, Any]:
    raw = at(outlet_id, north(metres_away), rep=rep, ago=timedelta(minutes=ago_minutes))
    raw["source"] = device
    return raw


def test_query_api_shows_verdicts_shares_alerts_sync_delays_and_clock_skew(
    services: dict[str, str], tokens: Tokens
) -> None:
    # REP-3 (D3, region R3) on phone-3, whose clock is 10 minutes fast: 3 orders on site, 1 off; synced 10, 20,
    # 30 and 40 minutes late. REP-2 (D2, region R2) on phone-2: 3 off site, 1 on: alerted.
    rep3 = [field_order("O4", "REP-3", "phone-3", m, ago) for m, ago in ((10, 10), (20, 20), (5_000, 30), (30, 40))]
    rep2 = [field_order("O3", "REP-2", "phone-2", m, 5) for m in (5_000, 6_000, 900_000, 10)]
    fast = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    assert post(services, tokens, rep3, device_time=fast)["accepted"] == 4
    assert post(services, tokens, rep2, device_time=datetime.now(UTC).isoformat())["accepted"] == 4
    query = httpx.Client(base_url=services["query-api"], headers=tokens.header("analyst"), timeout=10)

    def get(path: str, **params: str) -> dict[str, Any]:
        response = query.get(path, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def rows_by(path: str, key: str, **params: str) -> dict[str, dict[str, Any]]:
        return {r[key]: r for r in get(path, **params)["rows"]}

    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while (seen := {k: r["captures"] for k, r in rows_by("/v1/field/geo-verification", "key").items()}).get(
        "REP-2"
    ) != 4 or seen.get("REP-3") != 4:
        assert datetime.now(UTC) < deadline, f"the verdicts did not reach query-api: {seen}"
        time.sleep(0.3)
    by_rep = rows_by("/v1/field/geo-verification", "key")
    assert (by_rep["REP-3"]["verified_share"], by_rep["REP-3"]["off_site"]) == (0.75, 1)
    assert (by_rep["REP-2"]["verified_share"], by_rep["REP-2"]["off_site"]) == (0.25, 3)
    assert rows_by("/v1/field/geo-verification", "key", by="distributor")["D3"]["verified_share"] == 0.75
    assert rows_by("/v1/field/geo-verification", "key", by="region")["R2"]["verified_share"] == 0.25

    # The alert: REP-2 has 3 off-site orders (the threshold), REP-3 only one; REP-1's earlier ones count too.
    alerted = {r["rep_id"]: r for r in get("/v1/field/off-site-alerts")["reps"]}
    assert alerted["REP-2"]["off_site_orders"] == 3
    assert "REP-3" not in alerted

    # Sync delay percentiles (percentile_cont over 600, 1200, 1800, 2400 s).
    delays = rows_by("/v1/field/sync-delays", "key")["REP-3"]
    assert delays["p50_s"] == pytest.approx(1_500, abs=10)
    assert delays["p95_s"] == pytest.approx(2_310, abs=10)
    assert rows_by("/v1/field/sync-delays", "key", by="device")["phone-3"]["events"] == 4

    skew = {d["device"]: d for d in get("/v1/field/clock-skew")["devices"]}
    assert skew["phone-3"]["latest_skew_s"] == pytest.approx(600, abs=30)
    assert (skew["phone-3"]["flagged"], skew["phone-2"]["flagged"]) == (True, False)
    assert skew["phone-3"]["batches"] == 1

    # The events view carries each order's verdict; a rep reads only its own figures.
    def events_with_verdicts() -> dict[str, str | None]:
        rows = get("/v1/sales/events", rep="REP-3")["rows"]
        return {r["event_id"]: r["location_verdict"] for r in rows}

    expected = {e["event_id"]: v for e, v in zip(rep3, ["on_site", "on_site", "off_site", "on_site"], strict=True)}
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while events_with_verdicts() != expected:
        assert datetime.now(UTC) < deadline, f"events view: {events_with_verdicts()}"
        time.sleep(0.3)
    own = httpx.get(f"{services['query-api']}/v1/field/geo-verification", headers=tokens.header("rep2")).json()
    assert [r["key"] for r in own["rows"]] == ["REP-2"]


def test_the_first_good_capture_at_an_ungeotagged_outlet_proposes_its_geotag_until_an_admin_confirms(
    services: dict[str, str], tokens: Tokens
) -> None:
    coarse, good, later = at("O11", north(5), accuracy=80), at("O11", north(7), accuracy=8), at("O11", SHOP, 4)
    for raw in (coarse, good, later):  # one batch each: the first good one is the proposal
        assert post(services, tokens, [raw], who="rep1")["results"][0]["location"]["verdict"] == "outlet_not_geotagged"
    query = httpx.Client(base_url=services["query-api"], headers=tokens.header("admin"), timeout=10)

    def proposal() -> dict[str, Any] | None:
        body = query.get("/v1/field/geotag-proposals").json()
        return next((p for p in body["proposals"] if p["outlet_id"] == "O11"), None)

    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while (found := proposal()) is None or found["subject_event_id"] != good["event_id"]:
        assert datetime.now(UTC) < deadline, f"no proposal from the first good capture: {found}"
        time.sleep(0.3)
    assert (found["lat"], found["accuracy_m"]) == (pytest.approx(north(7)[0]), 8)
    confirm = event(
        "OutletGeotagged",
        {"outlet_id": "O11", "lat": found["lat"], "lon": found["lon"], "accuracy_m": 8,
         "proposed_by_event_id": found["subject_event_id"]},
    )  # fmt: skip
    assert post(services, tokens, [confirm])["accepted"] == 1
    while proposal() is not None:
        assert datetime.now(UTC) < deadline, "the confirmed geotag still has a proposal"
        time.sleep(0.3)
