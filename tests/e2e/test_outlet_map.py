"""The outlet map: /v1/outlets/map against /v1/sales, and the dashboard's SVG map in headless Chromium (Debian's
package, driven by Playwright): one dot per outlet in scope, dormant outlets grey, following the drill scope."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import event, order, reference_events
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
# Distinct coordinates per outlet (the shared test brand puts every outlet on one point); O6 never orders.
LOCATIONS = {
    "O1": (28.61, 77.21),
    "O2": (28.70, 77.10),
    "O3": (30.90, 75.85),
    "O4": (12.97, 77.59),
    "O5": (13.05, 77.50),
    "O6": (28.52, 77.30),
}
DORMANT = "O6"
ORDERS = [("O1", [("S1", 5), ("S3", 2)]), ("O2", [("S1", 1)]), ("O3", [("S2", 2)]), ("O4", [("S1", 7)])]
SOLD = {"O1", "O2", "O3", "O4"}
GREY = "#b0b4bb"


def map_reference() -> list[dict[str, Any]]:
    events = []
    for e in reference_events():
        if e["event_type"] == "OutletRegistered":
            lat, lon = LOCATIONS[e["payload"]["outlet_id"]]
            e["payload"]["location"] = {"lat": lat, "lon": lon, "accuracy_m": 5}
        events.append(e)
    dormant = next(e for e in events if e["event_type"] == "OutletRegistered" and e["payload"]["outlet_id"] == "O1")
    lat, lon = LOCATIONS[DORMANT]
    payload = {**dormant["payload"], "outlet_id": DORMANT, "name": f"Shop {DORMANT}"}
    payload["location"] = {"lat": lat, "lon": lon, "accuracy_m": 5}
    events.append(event("OutletRegistered", payload, occurred_at=datetime.fromisoformat(dormant["occurred_at"])))
    return events


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, tokens)
        reference = map_reference()
        api.post(reference)
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, reference)
        api.wait(lambda: api.get("/v1/outlets/map")["total_outlets"] == len(LOCATIONS), "outlets")
        api.post([order(outlet, lines) for outlet, lines in ORDERS])
        lines = sum(len(lines) for _, lines in ORDERS)
        api.wait(lambda: api.get("/v1/sales")["total"]["lines"] >= lines, "orders")
        yield running


def test_map_values_equal_the_sales_api(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    api = Api(services, tokens)
    body = api.get("/v1/outlets/map")
    by_id = {o["id"]: o for o in body["outlets"]}
    assert set(by_id) == set(LOCATIONS)
    assert body["total_outlets"] == len(LOCATIONS)
    for distributor in ("D1", "D2", "D3"):
        for row in api.get("/v1/sales", level="outlet", parent_id=distributor)["rows"]:
            assert Decimal(by_id[row["id"]]["value"]) == Decimal(row["value"])
            assert by_id[row["id"]]["units"] == row["units"]
    assert Decimal(by_id[DORMANT]["value"]) == 0
    assert by_id[DORMANT]["units"] == 0
    assert {o for o, x in by_id.items() if Decimal(x["value"]) > 0} == SOLD
    assert (by_id["O1"]["lat"], by_id["O1"]["lon"]) == LOCATIONS["O1"]
    lats, lons = [lat for lat, _ in LOCATIONS.values()], [lon for _, lon in LOCATIONS.values()]
    assert body["bounds"] == {"min_lat": min(lats), "min_lon": min(lons), "max_lat": max(lats), "max_lon": max(lons)}
    assert Decimal(body["max_value"]) == max(Decimal(o["value"]) for o in body["outlets"])

    # Scope and filters: the same range and brand as /v1/sales; `within` any zone, region or distributor.
    today = datetime.now(UTC).date()
    rng = {"from": str(today - timedelta(days=1)), "to": str(today)}
    tea = api.get("/v1/outlets/map", brand="Sunrise Tea", within="D1", **rng)
    sales = {
        r["id"]: r for r in api.get("/v1/sales", level="outlet", parent_id="D1", brand="Sunrise Tea", **rng)["rows"]
    }
    assert {o["id"] for o in tea["outlets"]} == {"O1", "O2", DORMANT}
    for o in tea["outlets"]:
        assert Decimal(o["value"]) == Decimal(sales[o["id"]]["value"] if o["id"] in sales else 0)
    assert {o["id"] for o in api.get("/v1/outlets/map", within="Z2")["outlets"]} == {"O4", "O5"}
    assert {o["id"] for o in api.get("/v1/outlets/map", within="R2")["outlets"]} == {"O3"}
    limited = api.get("/v1/outlets/map", limit="2")
    assert len(limited["outlets"]) == 2
    assert limited["total_outlets"] == len(LOCATIONS)

    unknown = api.query.get("/v1/outlets/map", params={"within": "NOPE"})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert api.query.get("/v1/outlets/map", params={"from": "2026-02-02", "to": "2026-02-01"}).status_code == 422
    assert api.query.get("/v1/outlets/map", params={"from": "not-a-date"}).status_code == 422
    assert api.query.get("/v1/outlets/map", params={"limit": "20001"}).status_code == 422
    assert httpx.get(f"{services['query-api'].url}/v1/outlets/map").status_code == 401


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_dashboard_map_follows_the_drill_scope(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    api = Api(services, tokens)

    def expect_dots(page: Page, body: dict[str, Any]) -> None:
        dots = page.get_by_test_id("map-dot")
        expect(dots).to_have_count(len(body["outlets"]), timeout=10_000)
        shown = {d.get_attribute("data-outlet") for d in dots.all()}
        assert shown == {o["id"] for o in body["outlets"]}
        for o in body["outlets"]:
            dot = page.locator(f'[data-testid="map-dot"][data-outlet="{o["id"]}"]')
            expect(dot.locator("title")).to_contain_text(o["name"])
            fill = dot.get_attribute("fill")
            if Decimal(o["value"]) == 0:
                assert fill == GREY, (o["id"], fill)
            else:
                assert fill != GREY, (o["id"], fill)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{services['query-api'].url}/dashboard")
        page.get_by_test_id("token-input").fill(tokens.issued["analyst"].token)
        page.get_by_test_id("token-submit").click()

        national = api.get("/v1/outlets/map")
        expect_dots(page, national)
        expect(page.get_by_test_id("map-legend")).to_contain_text("dormant")
        assert page.locator(f'[data-testid="map-dot"][data-outlet="{DORMANT}"]').get_attribute("fill") == GREY
        expect(page.get_by_text("no outlet coordinates")).to_have_count(0)
        ARTIFACTS.mkdir(exist_ok=True)
        page.get_by_test_id("map").screenshot(path=str(ARTIFACTS / "dashboard-map.png"))

        # Each drill step: wait for the new scope's rows, then the map shows that scope's outlets.
        page.get_by_test_id("drill-Z1").click()
        expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "region")
        expect_dots(page, api.get("/v1/outlets/map", within="Z1"))
        page.get_by_test_id("drill-R1").click()
        expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "distributor")
        expect_dots(page, api.get("/v1/outlets/map", within="R1"))
        page.get_by_test_id("drill-D1").click()
        expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "outlet")
        expect(page.locator("#map-title")).to_have_text("Outlets by secondary sales in Dist D1")
        d1 = api.get("/v1/outlets/map", within="D1")
        assert {o["id"] for o in d1["outlets"]} == {"O1", "O2", DORMANT}
        expect_dots(page, d1)
        page.screenshot(path=str(ARTIFACTS / "dashboard-map-distributor.png"), full_page=True)

        # A filter reaches the map: only Koko Biscuits (S3) sold, at O1; every other outlet of D1 is grey.
        page.get_by_test_id("filter-brand").fill("Koko Biscuits")
        page.get_by_test_id("filter-apply").click()
        koko = api.get("/v1/outlets/map", within="D1", brand="Koko Biscuits")
        expect(page.locator('[data-testid="map-dot"][data-dormant="true"]')).to_have_count(2)
        expect_dots(page, koko)
        browser.close()
