"""The typed route dependencies (sellthrough_runtime.dependencies, query_api.api.params) on a small app of their own:
what they give a route, and the problems they answer for bad input, without PostgreSQL (the pool is never
touched by these)."""

from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from query_api.api.params import ListingDep, PeriodDep, SalesFilterDep, WindowDep
from sellthrough_runtime.app import ServiceContext
from sellthrough_runtime.dependencies import ContextDep, RelayDep, SettingsDep, settings_of
from sellthrough_runtime.problems import install_problem_handlers
from sellthrough_runtime.settings import ServiceSettings

ZONE = "Pacific/Kiritimati"
# UTC+14 and UTC-12: at any hour one of them is on another calendar day than UTC.
FAR_ZONES = ("Pacific/Kiritimati", "Etc/GMT+12")


class Relay:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


class OtherSettings(ServiceSettings):
    pass


def app_with(relay: Relay | None = None, zone: str = ZONE) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.context = ServiceContext(
        service="test",
        settings=ServiceSettings(business_timezone=zone),
        pool=cast(asyncpg.Pool, None),
        relay=relay,
    )

    @app.get("/period")
    def period(p: PeriodDep) -> dict[str, Any]:
        return {"from": p.date_from, "to": p.date_to}

    @app.get("/filter")
    def sales_filter(f: SalesFilterDep, page: ListingDep) -> dict[str, Any]:
        return {"brand": f.brand, "sku": f.sku_id, "from": f.date_from, "limit": page.limit, "csv": page.csv}

    @app.get("/window")
    def window(w: WindowDep) -> dict[str, Any]:
        return {"days": w.days, "since": w.since}

    @app.get("/context")
    def context(c: ContextDep, s: SettingsDep) -> dict[str, Any]:
        return {"service": c.service, "zone": s.business_timezone}

    @app.post("/wake")
    def wake(r: RelayDep) -> None:
        r.wake()

    return app


@pytest.mark.parametrize("zone", FAR_ZONES)
def test_the_period_defaults_to_the_30_days_ending_today_in_the_business_timezone(zone: str) -> None:
    today = datetime.now(ZoneInfo(zone)).date()
    body = TestClient(app_with(zone=zone)).get("/period").json()
    assert body == {"from": str(today - timedelta(days=29)), "to": str(today)}


def test_the_period_refuses_a_reversed_or_overlong_range_with_a_problem() -> None:
    client = TestClient(app_with())
    reversed_ = client.get("/period", params={"from": "2026-03-02", "to": "2026-03-01"})
    assert reversed_.status_code == 422
    assert reversed_.headers["content-type"].startswith("application/problem+json")
    assert reversed_.json()["type"].endswith("invalid-range")
    too_long = client.get("/period", params={"from": "2025-01-01", "to": "2026-03-01"})
    assert too_long.status_code == 422
    assert too_long.json()["type"].endswith("invalid-range")


def test_the_sales_filter_and_listing_read_their_documented_names() -> None:
    body = (
        TestClient(app_with())
        .get(
            "/filter",
            params={"from": "2026-03-01", "to": "2026-03-02", "brand": "Tea", "sku": "S1", "limit": 7, "format": "csv"},
        )
        .json()
    )
    assert body == {"brand": "Tea", "sku": "S1", "from": "2026-03-01", "limit": 7, "csv": True}
    assert TestClient(app_with()).get("/filter", params={"limit": 0}).status_code == 422


def test_the_window_counts_back_from_now() -> None:
    body = TestClient(app_with()).get("/window", params={"days": 2}).json()
    since = datetime.fromisoformat(body["since"])
    assert body["days"] == 2
    assert abs((datetime.now(since.tzinfo) - since) - timedelta(days=2)) < timedelta(minutes=1)


def test_context_and_settings_come_from_the_app() -> None:
    assert TestClient(app_with()).get("/context").json() == {"service": "test", "zone": ZONE}


def test_the_relay_is_the_one_on_the_context_and_its_absence_is_an_error() -> None:
    relay = Relay()
    assert TestClient(app_with(relay)).post("/wake").status_code == 200
    assert relay.woken == 1
    with pytest.raises(RuntimeError, match="runs no outbox relay"):
        TestClient(app_with(None)).post("/wake")


async def test_settings_of_refuses_a_service_run_with_other_settings() -> None:
    context = ServiceContext(service="test", settings=ServiceSettings(), pool=cast(asyncpg.Pool, None))
    assert await settings_of(ServiceSettings)(context) is context.settings
    with pytest.raises(TypeError, match="not OtherSettings"):
        await settings_of(OtherSettings)(context)


def test_a_period_before_year_one_is_a_problem_not_a_crash() -> None:
    response = TestClient(app_with()).get("/period", params={"to": str(date(1, 1, 5))})
    assert response.status_code == 422
    assert response.json()["type"].endswith("invalid-range")
