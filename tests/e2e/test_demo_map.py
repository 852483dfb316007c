"""The demo brand's geography (`make dev`) on the outlet map: every region has its own outline, every outlet lies
inside its region's outline, and the dashboard draws one SVG path per region (Chromium, a screenshot kept)."""

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.demo_brand import ZONES, build_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.browser import ARTIFACTS, CHROMIUM
from tests.support.services import running_services

pytestmark = pytest.mark.e2e

REGIONS_PER_ZONE = 3
OUTLETS = 400


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    masters = build_masters(
        random.Random(7),
        datetime.now(UTC) - timedelta(days=2),
        regions_per_zone=REGIONS_PER_ZONE,
        distributors=24,
        outlets=OUTLETS,
        skus=5,
        reps=24,
    )
    with running_services(infra, tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, tokens)
        for start in range(0, len(masters.reference), 500):
            api.post(masters.reference[start : start + 500])
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, masters.reference)
        api.wait(lambda: api.get("/v1/outlets/map")["total_outlets"] == OUTLETS, "outlets")
        yield running


def inside(lon: float, lat: float, ring: list[list[float]]) -> bool:
    """Even-odd rule: a ray to the east crosses the ring an odd number of times."""
    crossings = 0
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
            crossings += 1
    return crossings % 2 == 1


def test_every_demo_region_has_an_outline_around_its_outlets(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    api = Api(services, tokens)
    body = api.get("/v1/outlets/map")
    regions = {r["id"]: r for r in body["regions"]}
    assert len(regions) == len(ZONES) * REGIONS_PER_ZONE
    assert {r["outline_source"] for r in regions.values()} == {"defined"}
    for zone in ZONES:
        under = api.get("/v1/outlets/map", within=zone)
        for o in under["outlets"]:
            assert any(inside(o["lon"], o["lat"], regions[r["id"]]["outline"][0]) for r in under["regions"]), o


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_the_dashboard_draws_a_path_per_demo_region(services: dict[str, ServiceProcess], tokens: Tokens) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.support.browser import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{services['query-api'].url}/dashboard")
        page.get_by_test_id("token-input").fill(tokens.issued["analyst"].token)
        page.get_by_test_id("token-submit").click()
        outlines = page.locator('[data-testid="map-outline"][data-source="defined"]')
        expect(outlines).to_have_count(len(ZONES) * REGIONS_PER_ZONE, timeout=15_000)
        expect(page.get_by_test_id("map-outline-note")).to_have_count(0)
        ARTIFACTS.mkdir(exist_ok=True)
        page.get_by_test_id("map").screenshot(path=str(ARTIFACTS / "dashboard-demo-map.png"))
        browser.close()
