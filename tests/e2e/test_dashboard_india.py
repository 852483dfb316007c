"""The dashboard as an Indian brand uses it, in headless Chromium (Debian's package, driven by Playwright): rupees
with lakh / crore grouping and a remembered switch to international grouping, region outlines on the outlet map
(the brand's own, else its outlets' convex hull, said so), sellers painted above dormant outlets, and a usable
layout on a 390x844 phone (no horizontal scroll, tiles stacked, tables scrolling in their box, a real screenshot)."""

import base64
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from query_api.figures.convex_hull import convex_hull
from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import event, order, reference_events
from tests.support.browser import ARTIFACTS, CHROMIUM
from tests.support.inr import inr
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True
    )

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect  # noqa: E402

expect.set_options(timeout=10_000)

# (lat, lon) per outlet. R1 (Delhi: D1) has its own outline; R2 (Punjab: D2) has one outlet only, so neither an
# outline nor a hull; R3 (Karnataka: D3) has none defined and four outlets, so its hull is drawn.
LOCATIONS = {
    "O1": (28.61, 77.21),
    "O2": (28.70, 77.10),
    "O3": (30.90, 75.85),
    "O4": (12.97, 77.59),
    "O5": (13.05, 77.50),
    "O6": (28.6101, 77.2101),  # dormant, on top of O1: which one is painted on top is visible
    "O7": (12.90, 77.45),
    "O8": (13.10, 77.70),
}
EXTRA_OUTLETS = {"O6": "D1", "O7": "D3", "O8": "D3"}
DELHI = [[76.9, 28.3], [77.5, 28.3], [77.6, 28.9], [76.9, 28.9], [76.9, 28.3]]
# O1 alone is over a crore; O7 over twenty lakh; the rest small. Dormant: O2, O6, O8.
ORDERS = [("O1", [("S1", 1_000_000)]), ("O4", [("S1", 1_000)]), ("O3", [("S2", 2)]), ("O5", [("S3", 3)])]
O7_UNITS = 200_000
SELLERS = {"O1", "O3", "O4", "O5", "O7"}


def india_reference() -> list[dict[str, Any]]:
    events = []
    for e in reference_events():
        p = e["payload"]
        if e["event_type"] == "GeographyDefined" and p["geo_id"] == "R1":
            p["outline"] = [DELHI]
        if e["event_type"] == "OutletRegistered":
            lat, lon = LOCATIONS[p["outlet_id"]]
            p["location"] = {"lat": lat, "lon": lon, "accuracy_m": 5}
        events.append(e)
    template = next(e for e in events if e["event_type"] == "OutletRegistered")
    for outlet, distributor in EXTRA_OUTLETS.items():
        lat, lon = LOCATIONS[outlet]
        payload = {**template["payload"], "outlet_id": outlet, "name": f"Shop {outlet}", "distributor_id": distributor}
        payload["location"] = {"lat": lat, "lon": lon, "accuracy_m": 5}
        events.append(event("OutletRegistered", payload, occurred_at=datetime.fromisoformat(template["occurred_at"])))
    return events


def o7_order() -> dict[str, Any]:
    captured = order("O4", [("S1", O7_UNITS)])
    captured["payload"]["outlet_id"] = "O7"
    return captured


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_services(infra, tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, tokens)
        reference = india_reference()
        api.post(reference)
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, reference)
        api.wait(lambda: api.get("/v1/outlets/map")["total_outlets"] == len(LOCATIONS), "outlets")
        api.post([order(outlet, lines) for outlet, lines in ORDERS] + [o7_order()])
        api.wait(lambda: api.get("/v1/sales")["total"]["lines"] >= len(ORDERS) + 1, "orders")
        yield running


def connect(page: Page, services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    page.goto(f"{services['query-api'].url}/dashboard")
    page.get_by_test_id("token-input").fill(tokens.issued["analyst"].token)
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "zone")


def short_inr(value: Decimal) -> str:
    if value >= 10_000_000:
        return f"₹{value / 10_000_000:.1f} Cr"
    return f"₹{value / 100_000:.1f} L"


def test_map_regions_carry_the_brands_outline_or_their_outlets_hull(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    api = Api(services, tokens)
    regions = {r["id"]: r for r in api.get("/v1/outlets/map")["regions"]}
    assert set(regions) == {"R1", "R2", "R3"}
    assert regions["R1"]["outline_source"] == "defined"
    assert regions["R1"]["outline"] == [DELHI]
    assert regions["R2"]["outline_source"] == "none"
    assert regions["R2"]["outline"] is None
    assert regions["R3"]["outline_source"] == "outlets_hull"
    in_r3 = [(lon, lat) for o, (lat, lon) in LOCATIONS.items() if o in {"O4", "O5", "O7", "O8"}]
    assert regions["R3"]["outline"] == [[list(p) for p in convex_hull(in_r3) or []]]
    # The regions follow the map's scope; a region's hull is the same at every drill level.
    assert [r["id"] for r in api.get("/v1/outlets/map", within="Z2")["regions"]] == ["R3"]
    assert api.get("/v1/outlets/map", within="D3")["regions"] == [regions["R3"]]
    assert [r["id"] for r in api.get("/v1/outlets/map", within="O2")["regions"]] == ["R1"]

    # A malformed outline is refused at the door with its reason, and the geography stays as it was.
    open_ring = event(
        "GeographyDefined",
        {"geo_id": "R1", "level": "region", "name": "Delhi", "parent_id": "Z1", "outline": [DELHI[:-1]]},
    )
    response = api.capture.post("/v1/events", json={"events": [open_ring]})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert (result["status"], result["reason"]) == ("rejected", "invalid_fields")
    assert "closed" in result["detail"]
    assert {r["id"]: r for r in api.get("/v1/outlets/map")["regions"]}["R1"]["outline"] == [DELHI]


def test_money_in_rupees_with_lakh_grouping_and_a_remembered_switch(
    services: dict[str, ServiceProcess], tokens: Tokens, browser: Browser
) -> None:
    api = Api(services, tokens)
    zones = api.get("/v1/sales", level="zone")
    total = Decimal(zones["total"]["value"])
    z1 = next(r for r in zones["rows"] if r["id"] == "Z1")
    assert total > 10_000_000  # over a crore: the tile says Cr
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    connect(page, services, tokens)

    # Indian grouping by default: every digit in the table (1,05,00,000.00), lakh / crore on the tile.
    value = page.get_by_test_id("value-Z1")
    expect(value).to_have_text(inr(z1["value"]))
    assert re.fullmatch(r"₹\d{1,2},\d\d,\d\d,\d{3}\.\d\d", value.inner_text()), value.inner_text()
    card = page.get_by_test_id("card-secondary-value")
    expect(card).to_have_text(short_inr(total))
    expect(card).to_have_attribute("data-full", inr(total))

    # The switch: international grouping at once, and after a reload, and in a new tab (localStorage).
    page.get_by_test_id("grouping").select_option("international")
    expect(value).to_have_text(f"₹{Decimal(z1['value']):,.2f}")
    expect(card).to_have_text(re.compile(r"^₹\d+(\.\d)?M$"))
    assert page.evaluate("localStorage.getItem('sellthrough.grouping')") == "international"
    page.reload()
    expect(page.get_by_test_id("grouping")).to_have_value("international")
    expect(page.get_by_test_id("value-Z1")).to_have_text(f"₹{Decimal(z1['value']):,.2f}")
    other = context.new_page()
    connect(other, services, tokens)
    expect(other.get_by_test_id("grouping")).to_have_value("international")
    expect(other.get_by_test_id("value-Z1")).to_have_text(f"₹{Decimal(z1['value']):,.2f}")
    other.close()

    # Back to Indian; under the South zone the total is in lakh.
    page.get_by_test_id("grouping").select_option("indian")
    expect(page.get_by_test_id("value-Z1")).to_have_text(inr(z1["value"]))
    page.get_by_test_id("drill-Z2").click()
    expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "region")
    south = Decimal(api.get("/v1/sales", level="region", parent_id="Z2")["total"]["value"])
    assert 100_000 <= south < 10_000_000
    expect(card).to_have_text(short_inr(south))
    context.close()


def test_money_follows_the_currency_the_response_names(
    services: dict[str, ServiceProcess], tokens: Tokens, browser: Browser
) -> None:
    # The server names no currency yet (INR is assumed); a response that names one is shown in it.
    api = Api(services, tokens)
    zones = api.get("/v1/sales", level="zone")
    z1 = next(r for r in zones["rows"] if r["id"] == "Z1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def in_dollars(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "currency": "USD"})

    page.route(re.compile(r".*/v1/sales\?.*"), in_dollars)
    connect(page, services, tokens)
    expect(page.get_by_test_id("value-Z1")).to_have_text(re.compile(r"^(US)?\$"))
    amount = Decimal(z1["value"])
    expect(page.get_by_test_id("value-Z1")).to_contain_text(inr(amount).removeprefix("₹"))
    page.close()


def dot_order(page: Page) -> list[tuple[str, bool]]:
    return [
        (str(d["outlet"]), d["dormant"] == "true")
        for d in page.eval_on_selector_all('[data-testid="map-dot"]', "ds => ds.map((d) => ({...d.dataset}))")
    ]


def test_map_draws_region_outlines_and_sellers_above_dormant_outlets(
    services: dict[str, ServiceProcess], tokens: Tokens, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    connect(page, services, tokens)
    outlines = page.get_by_test_id("map-outline")
    expect(outlines).to_have_count(2)  # R1 its own, R3 its hull; R2 has a single outlet
    assert {o.get_attribute("data-region"): o.get_attribute("data-source") for o in outlines.all()} == {
        "R1": "defined",
        "R3": "outlets_hull",
    }
    for outline in outlines.all():
        assert outline.evaluate("p => p.tagName") == "path"
        assert re.fullmatch(r"M[\d.,L]+Z", outline.get_attribute("d") or ""), outline.get_attribute("d")
    note = page.get_by_test_id("map-outline-note")
    expect(note).to_contain_text("Karnataka")
    expect(note).to_contain_text("convex hull")
    expect(note).to_contain_text("Punjab")
    # Outlines are painted first, under every dot.
    assert page.evaluate(
        "() => { const svg = document.querySelector('#map svg'); const all = [...svg.querySelectorAll('path, circle')];"
        " return all.findIndex((n) => n.tagName === 'circle') > all.findLastIndex((n) => n.tagName === 'path'); }"
    )

    # Paint order is document order: every dormant dot before every seller.
    order_ = dot_order(page)
    assert {o for o, dormant in order_ if not dormant} == SELLERS
    flags = [dormant for _, dormant in order_]
    assert flags == sorted(flags, reverse=True), order_
    # Where a dormant outlet sits on a seller, the seller is the one seen (and hovered).
    o1 = page.locator('[data-testid="map-dot"][data-outlet="O1"]').bounding_box()
    assert o1 is not None
    top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).dataset.outlet",
        [o1["x"] + o1["width"] / 2, o1["y"] + o1["height"] / 2],
    )
    assert top == "O1"
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_test_id("map").screenshot(path=str(ARTIFACTS / "dashboard-map-outlines.png"))

    # Under the South zone: only Karnataka's hull, dashed.
    page.get_by_test_id("drill-Z2").click()
    expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "region")
    expect(outlines).to_have_count(1)
    expect(outlines).to_have_attribute("data-region", "R3")
    expect(outlines).to_have_class(re.compile(r"\bhull\b"))
    page.close()


def non_blank(page: Page, png: bytes) -> dict[str, int]:
    """Decodes the screenshot in the page's own canvas: its size, distinct colours and non-white pixels."""
    script = """async (b64) => {
      const img = new Image();
      img.src = "data:image/png;base64," + b64;
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = img.width; canvas.height = img.height;
      const g = canvas.getContext("2d");
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, img.width, img.height).data;
      const colours = new Set();
      let inked = 0;
      for (let i = 0; i < d.length; i += 4) {
        colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) inked++;
      }
      return { width: img.width, height: img.height, colours: colours.size, inked };
    }"""
    return dict(page.evaluate(script, base64.b64encode(png).decode()))


def expect_fits_the_phone(page: Page) -> None:
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert page.evaluate("document.scrollingElement.clientWidth") <= 390


def test_phone_layout_has_no_horizontal_scroll_and_reachable_controls(
    services: dict[str, ServiceProcess], tokens: Tokens, browser: Browser, tmp_path: Path
) -> None:
    context: BrowserContext = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    connect(page, services, tokens)
    expect(page.get_by_test_id("map-outline")).to_have_count(2)
    expect_fits_the_phone(page)

    # Tiles stacked in the width: each inside the screen, over several rows.
    boxes = [b for b in (c.bounding_box() for c in page.locator("#cards > div").all()) if b]
    assert len(boxes) >= 6
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= 390 for b in boxes), boxes
    assert len({round(b["y"]) for b in boxes}) >= 3
    # The table scrolls inside its box: the box fits the screen, the table may be wider.
    rows = page.locator("#rows")
    assert rows.evaluate("el => el.getBoundingClientRect().right") <= 390
    assert rows.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    # Controls are on the screen and work: the grouping switch, the filters' Apply, a drill link.
    for control in ("grouping", "filter-brand", "filter-apply", "drill-Z1"):
        box = page.get_by_test_id(control).bounding_box()
        assert box is not None, control
        assert box["x"] >= 0, (control, box)
        assert box["x"] + box["width"] <= 390, (control, box)
    page.get_by_test_id("filter-apply").tap()
    page.get_by_test_id("drill-Z1").tap()
    expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "region")
    page.get_by_test_id("drill-R1").tap()
    page.get_by_test_id("drill-D1").tap()
    expect(page.get_by_test_id("rows-table")).to_have_attribute("data-level", "outlet")
    expect(page.get_by_test_id("map-dot")).to_have_count(3)
    expect_fits_the_phone(page)
    # The widest table (outlets, seven columns) scrolls in its box rather than the page.
    assert rows.evaluate("el => el.scrollWidth >= el.clientWidth && el.getBoundingClientRect().right <= 390")

    shot = tmp_path / "dashboard-phone.png"
    png = page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    pixels = non_blank(page, png)
    assert pixels["width"] == 390, pixels  # a full-page shot is as wide as the page: nothing sticks out
    assert pixels["colours"] > 50, pixels
    assert pixels["inked"] > pixels["width"] * pixels["height"] // 50, pixels
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard-phone.png").write_bytes(png)
    context.close()
