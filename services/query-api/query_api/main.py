"""Composition root for query-api: the app with its routers, the projection consumers and the jobs."""

from fastapi import FastAPI

from query_api.api.field import router as field_router
from query_api.api.forecasts import router as forecast_router
from query_api.api.geo import router as geo_router
from query_api.api.kpis import router as kpi_router
from query_api.api.map import router as map_router
from query_api.api.notify import page_router as review_page_router
from query_api.api.notify import router as notify_router
from query_api.api.outlets import router as outlet_router
from query_api.api.provenance import router as provenance_router
from query_api.api.reconciliation import router as reconciliation_router
from query_api.api.sales import router as sales_router
from query_api.api.sales_sources import router as sales_sources_router
from query_api.api.schemes import router as schemes_router
from query_api.api.scope import router as scope_router
from query_api.api.stock import router as stock_router
from query_api.api.stock_turn import router as stock_turn_router
from query_api.dashboard.router import router as dashboard_router
from query_api.jobs.reconciliation_check import reconciliation_check_job
from query_api.names import MIGRATIONS, PROJECTION_GROUP, PROJECTION_TOPICS, SCHEMA, SERVICE
from query_api.notify.runner import notify_job
from query_api.projections.handler import projection_handler
from query_api.projections.registry import PROJECTION_TYPES
from query_api.projections.sales_fold import fold_job
from query_api.schema_swap import SchemaWatch, SwapGuardedHandler, restarting_on_swap
from query_api.settings import QueryApiSettings
from sellthrough_runtime.app import Job, ServiceContext, create_service_app, serve
from sellthrough_runtime.consumer import consumer_job
from sellthrough_runtime.dead_letters import ConsumerSpec
from sellthrough_runtime.settings import ServiceSettings

__all__ = ["MIGRATIONS", "PROJECTION_GROUP", "SCHEMA", "SERVICE", "consumer_spec", "create_app", "run"]


def consumer_spec() -> ConsumerSpec:
    """The projection consumer group, as the service runs it and as `sellthrough-dead-letters` replays into it."""
    return ConsumerSpec(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        group_id=PROJECTION_GROUP,
        topics=PROJECTION_TOPICS,
        wanted_types=PROJECTION_TYPES,
        settings=QueryApiSettings,
        handler=projection_handler,
    )


async def _start_jobs(context: ServiceContext) -> dict[str, Job]:
    settings = context.settings
    members = settings.projection_consumers if isinstance(settings, QueryApiSettings) else 1
    spec = consumer_spec()
    check_seconds = settings.reconciliation_check_seconds if isinstance(settings, QueryApiSettings) else 60.0
    # A rebuild (query_api.jobs.rebuild) may swap another schema in under the name SCHEMA: the watch renews the
    # pool's connections then, and each consumer member starts again from the offsets stored there.
    watch = SchemaWatch(context.pool, SCHEMA)
    jobs: dict[str, Job] = {
        "reconciliation-check": reconciliation_check_job(context.pool, check_seconds),
        "projection-schema-watch": watch.run,
    }
    if isinstance(settings, QueryApiSettings):
        # Alerts that reach people: webhook deliveries, the daily digest, the Monday review pack.
        jobs["notify"] = notify_job(context.pool, settings)
    fold_every, fold_lines, synchronous, parallel, running_every = (
        (
            settings.sales_fold_seconds,
            settings.sales_fold_max_lines,
            settings.projection_synchronous_commit,
            settings.projection_parallel_transactions,
            settings.sales_running_fold_seconds,
        )
        if isinstance(settings, QueryApiSettings)
        else (0.2, 50_000, False, 2, 2.0)
    )
    jobs["sales-fold"] = fold_job(
        context.pool, fold_every, fold_lines, synchronous_commit=synchronous, running_interval=running_every
    )
    for member in range(1, members + 1):
        handler = SwapGuardedHandler(projection_handler(settings), watch, SCHEMA)
        consumer = consumer_job(
            pool=context.pool,
            settings=settings,
            group_id=spec.group_id,
            topics=spec.topics,
            handler=handler,
            wanted_types=spec.wanted_types,
            client_id=f"{PROJECTION_GROUP}-{member}",
            synchronous_commit=synchronous,
            parallel_transactions=parallel,
        )
        jobs[f"projection-consumer-{member}"] = restarting_on_swap(watch, handler, consumer)
    return jobs


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or QueryApiSettings()
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        settings=settings,
        routers=[
            review_page_router,  # before the dashboard's /dashboard/{asset}
            dashboard_router,
            sales_router,
            sales_sources_router,
            provenance_router,
            geo_router,
            reconciliation_router,
            stock_turn_router,
            stock_router,
            schemes_router,
            kpi_router,
            forecast_router,
            map_router,
            outlet_router,
            scope_router,
            field_router,
            notify_router,
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
    serve(create_app(settings), settings)
