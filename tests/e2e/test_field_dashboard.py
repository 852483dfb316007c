"""The field view of the dashboard in headless Chromium (as tests/e2e/test_dashboard.py): every figure of the
performance table equal to /v1/field/performance, the geo-verified shares, off-site alerts and sync delays equal
to the /v1/field reads, and a rep's day drilled to by clicking, planned outlets in sequence and visits in
check-in order with their location verdicts as /v1/field/reps/{rep}/days/{day} gives them."""

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.e2e.test_field import DAYS, RANGE, field_force
from tests.support.api import Api
from tests.support.brand import order
from tests.support.browser import ARTIFACTS, CHROMIUM
from tests.support.services import running_with_reference_data

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

LEDGER, EVENTS = field_force(random.Random(1616))


def off_site_orders() -> list[dict[str, Any]]:
    """Three orders keyed about 5.6 km north of O1 (0.05 degrees of latitude): REP-1 reaches the off-site alert's
    default threshold. They belong to no visit, so the performance figures do not change."""
    orders = [order("O1", [("S2", 1)], rep_id="REP-1") for _ in range(3)]
    for captured in orders:
        captured["payload"]["gps"] = {"lat": 28.65, "lon": 77.2, "accuracy_m": 10.0}
    return orders


OFF_SITE = off_site_orders()


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_with_reference_data(infra, tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, tokens)
        api.post(EVENTS + OFF_SITE)
        api.wait(
            lambda: sum(r["visits"] for r in api.get("/v1/field/performance", **RANGE)["rows"]) == len(LEDGER.visits),
            "the field events",
        )
        captures = len(LEDGER.visits) + len(LEDGER.orders) + len(OFF_SITE)
        api.wait(
            lambda: sum(r["captures"] for r in api.get("/v1/field/geo-verification", days="366")["rows"]) == captures,
            "the location verdicts",
        )
        yield running


NONE = "\N{EN DASH}"
"""What the page shows for a figure without a value."""


def pct(value: str | None) -> str:
    return NONE if value is None else f"{Decimal(value) * 100:.2f}%"


def expect_table(page: Page, api: Api, group_by: str) -> None:
    body = api.get("/v1/field/performance", group_by=group_by, **RANGE)
    assert body["rows"], "nothing to compare"
    expect(page.get_by_test_id("field-table")).to_have_attribute("data-group-by", group_by)
    expect(page.get_by_test_id("field-table").locator("tbody tr")).to_have_count(len(body["rows"]))
    for row in body["rows"]:
        key = row["id"]
        expect(page.get_by_test_id(f"compliance-{key}")).to_have_text(pct(row["beat_compliance"]))
        expect(page.get_by_test_id(f"productive-{key}")).to_have_text(pct(row["productive_share"]))
        expect(page.get_by_test_id(f"visits-{key}")).to_have_text(str(row["visits"]))
        expect(page.get_by_test_id(f"unplanned-{key}")).to_have_text(str(row["unplanned_visits"]))
        expect(page.get_by_test_id(f"absent-{key}")).to_have_text(str(row["absent_days"]))
        expect(page.get_by_test_id(f"first-{key}")).to_have_text(row["avg_first_call"] or NONE)


def window_days() -> str:
    """The page's window for the geo reads: the days from the chosen start date up to today."""
    return str((datetime.now(UTC).date() - date.fromisoformat(RANGE["from"])).days + 1)


def expect_geo(page: Page, api: Api, group_by: str) -> None:
    days = window_days()
    shares = api.get("/v1/field/geo-verification", by=group_by, days=days)
    assert shares["rows"], "no verdicts to compare"
    expect(page.get_by_test_id("geo-table").locator("tbody tr")).to_have_count(len(shares["rows"]))
    for row in shares["rows"]:
        key = row["key"] or "none"
        expect(page.get_by_test_id(f"geo-captures-{key}")).to_have_text(str(row["captures"]))
        expect(page.get_by_test_id(f"geo-share-{key}")).to_have_text(pct(str(row["verified_share"])))
        expect(page.get_by_test_id(f"geo-off_site-{key}")).to_have_text(str(row["off_site"]))
    alerts = api.get("/v1/field/off-site-alerts", days=days)
    assert [r["rep_id"] for r in alerts["reps"]] == ["REP-1"]
    expect(page.get_by_test_id("off-site-table").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("off-site-REP-1")).to_contain_text(str(alerts["reps"][0]["off_site_orders"]))
    delays = api.get("/v1/field/sync-delays", by="rep", days=days)
    expect(page.get_by_test_id("sync-table").locator("tbody tr")).to_have_count(len(delays["rows"]))


def verdict_text(visit: dict[str, Any]) -> str:
    if visit["verdict"] is None:
        return NONE
    if visit["distance_m"] is None:
        return str(visit["verdict"])
    # The page rounds half away from zero (Math.round) only for .5 exactly: never met with float distances.
    return f"{visit['verdict']} ({round(visit['distance_m'])} m)"


def test_the_field_view_matches_the_api_and_drills_to_a_reps_day(
    services: dict[str, ServiceProcess], tokens: Tokens, browser: Browser
) -> None:
    api = Api(services, tokens)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{services['query-api'].url}/dashboard/field.html")
    page.get_by_test_id("token-input").fill(tokens.issued["analyst"].token)
    page.get_by_test_id("token-submit").click()
    page.get_by_test_id("field-from").fill(RANGE["from"])
    page.get_by_test_id("field-to").fill(RANGE["to"])
    page.get_by_test_id("field-apply").click()
    expect_table(page, api, "rep")
    expect_geo(page, api, "rep")

    rep, day = next((v.rep, v.day) for v in LEDGER.visits if (v.rep, v.day) in LEDGER.plans)
    assert day in DAYS
    page.get_by_test_id("day-pick").fill(day.isoformat())
    page.get_by_test_id(f"drill-{rep}").click()
    body = api.get(f"/v1/field/reps/{rep}/days/{day.isoformat()}")
    expect(page.get_by_test_id("day-title")).to_contain_text(f"({rep}), {day.isoformat()}")
    expect(page.get_by_test_id("day-planned").locator("tbody tr")).to_have_count(len(body["planned"]))
    for planned in body["planned"]:
        expect(page.get_by_test_id(f"planned-{planned['sequence']}")).to_contain_text(planned["outlet_id"])
    for visit in body["visits"]:
        row = page.get_by_test_id(f"visit-{visit['sequence']}")
        expect(row).to_have_attribute("data-visit", visit["visit_id"])
        assert visit["verdict"] is not None, "every visit carries GPS: each has a verdict"
        expect(page.get_by_test_id(f"verdict-{visit['sequence']}")).to_have_text(verdict_text(visit))
        for placed in visit["orders"]:
            expect(row).to_contain_text(placed["order_id"])
    expect(page.get_by_test_id("map-route")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-field-day.png"), full_page=True)

    page.get_by_test_id("field-group-by").select_option("region")
    page.get_by_test_id("field-apply").click()
    expect_table(page, api, "region")
    expect_geo(page, api, "region")
    page.close()
