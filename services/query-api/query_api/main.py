"""Composition root for query-api."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import uvicorn
from fastapi import FastAPI
from pydantic import Field

from query_api.api import router as sales_router
from query_api.dashboard import router as dashboard_router
from query_api.field_api import router as field_router
from query_api.forecast_api import router as forecast_router
from query_api.freshness import NewestTimes, fed_projections, record_freshness
from query_api.geo_api import router as geo_router
from query_api.kpi_api import router as kpi_router
from query_api.map_api import router as map_router
from query_api.outlet_api import router as outlet_router
from query_api.projection import Projection
from query_api.provenance_api import router as provenance_router
from query_api.reconciliation_api import router as reconciliation_router
from query_api.reconciliation_check import reconciliation_check_job
from query_api.registry import PROJECTION_TYPES, PROJECTIONS, route
from query_api.schemes_api import router as schemes_router
from query_api.scope_api import router as scope_router
from query_api.stock_api import router as stock_router
from sellthrough_contracts import Envelope
from sellthrough_contracts.topics import FIELD_CHECKS, REFERENCE, SCHEME_RESULTS, SCHEMES, STOCK, TRADE
from sellthrough_runtime.app import Job, ServiceContext, create_service_app
from sellthrough_runtime.consumer import consumer_job
from sellthrough_runtime.dead_letters import ConsumerSpec
from sellthrough_runtime.settings import ServiceSettings

SERVICE = "query-api"
SCHEMA = "query_api"
PROJECTION_GROUP = "query-api.projections"
MIGRATIONS = Path(__file__).parent / "migrations"


class QueryApiSettings(ServiceSettings):
    http_port: int = 8004
    projection_consumers: int = Field(
        default=2,
        ge=1,
        le=6,
        description="Members of the projection consumer group run by this process. Two let Postgres apply one "
        "member's batch while Python decodes and prepares the other's; more than the trade topic's 6 partitions "
        "would idle.",
    )
    reconciliation_check_seconds: float = Field(
        default=60,
        gt=0,
        description="How often book stock is compared with the stock ledger's on-hand for every position "
        "(sellthrough_reconciliation_positions_differing).",
    )
    off_site_alert_orders: int = Field(
        default=3,
        ge=1,
        description="A rep with at least this many off-site orders within off_site_alert_days is alerted "
        "(GET /v1/field/off-site-alerts).",
    )
    off_site_alert_days: int = Field(default=7, ge=1, le=366, description="The off-site alert's window, in days.")
    geotag_proposal_max_accuracy_m: float = Field(
        default=30,
        gt=0,
        description="A capture at an ungeotagged outlet proposes its geotag when its accuracy is at least this "
        "good, in metres (GET /v1/field/geotag-proposals).",
    )
    clock_skew_alert_seconds: float = Field(
        default=300,
        gt=0,
        description="A device whose clock was off by more than this (either way) is flagged in GET "
        "/v1/field/clock-skew.",
    )


@dataclass(frozen=True)
class _Prepared:
    steps: list[tuple[Projection[Any], Any]]
    """Each projection the batch has events for, in registry order, with what it prepared."""
    freshness: list[NewestTimes]
    """Every projection the batch feeds, with its newest event times."""


class ProjectionHandler:
    """Applies a batch to every projection of the registry, in its order, each given only the events it consumes.
    A PreparingHandler (sellthrough_runtime.applier): every projection's rows, the bulk of the Python work, are
    prepared before the transaction, while the previous batch's statements run."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone

    def prepare(self, events: Sequence[Envelope]) -> _Prepared:
        steps = [
            (projection, projection.prepare(share, self._zone))
            for projection, share in zip(PROJECTIONS, route(events), strict=True)
            if share
        ]
        fed = [times for projection, prepared in steps for times in projection.fed(prepared)]
        return _Prepared(steps, [*fed, *fed_projections(events)])

    async def write(self, conn: asyncpg.Connection, prepared: _Prepared) -> None:
        for projection, rows in prepared.steps:
            await projection.write(conn, rows)
        await record_freshness(conn, prepared.freshness)

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[Envelope], /) -> None:
        await self.write(conn, self.prepare(events))


def projection_handler(settings: ServiceSettings) -> ProjectionHandler:
    return ProjectionHandler(settings.zone)


def consumer_spec() -> ConsumerSpec:
    """The projection consumer group, as the service runs it and as `sellthrough-dead-letters` replays into it."""
    return ConsumerSpec(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        group_id=PROJECTION_GROUP,
        topics=(REFERENCE.name, TRADE.name, STOCK.name, SCHEMES.name, SCHEME_RESULTS.name, FIELD_CHECKS.name),
        wanted_types=PROJECTION_TYPES,
        settings=QueryApiSettings,
        handler=projection_handler,
    )


async def _start_jobs(context: ServiceContext) -> dict[str, Job]:
    settings = context.settings
    members = settings.projection_consumers if isinstance(settings, QueryApiSettings) else 1
    spec = consumer_spec()
    check_seconds = settings.reconciliation_check_seconds if isinstance(settings, QueryApiSettings) else 60.0
    jobs: dict[str, Job] = {"reconciliation-check": reconciliation_check_job(context.pool, check_seconds)}
    return jobs | {
        f"projection-consumer-{member}": consumer_job(
            pool=context.pool,
            settings=settings,
            group_id=spec.group_id,
            topics=spec.topics,
            handler=spec.handler(settings),
            wanted_types=spec.wanted_types,
            client_id=f"{PROJECTION_GROUP}-{member}",
        )
        for member in range(1, members + 1)
    }


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or QueryApiSettings()
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        settings=settings,
        routers=[
            dashboard_router,
            sales_router,
            provenance_router,
            geo_router,
            reconciliation_router,
            stock_router,
            schemes_router,
            kpi_router,
            forecast_router,
            map_router,
            outlet_router,
            scope_router,
            field_router,
        ],
        start_jobs=_start_jobs,
        description="Drill-down over secondary sales, distributor stock, stock alerts and sell-in vs sell-through.",
        # Reads need only PostgreSQL: with the broker down the projections stop advancing, which the consumer lag
        # and projection freshness metrics report, but every read still answers, so the pods stay in rotation.
        ready_without_kafka=True,
        # Read queries are prepared statements whose best plan depends on the level, parent and date range;
        # after five runs Postgres may switch to one generic plan, measured ~20x slower for the drill-down.
        postgres_settings={"plan_cache_mode": "force_custom_plan"},
    )


def run() -> None:
    settings = QueryApiSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)
