"""Composition root for order-capture: builds the app from settings; nothing is wired at import time."""

from pathlib import Path

from fastapi import FastAPI

from order_capture.adapters.masters import WANTED_TYPES, apply_reference_events
from order_capture.adapters.masters_cache import EXTENSION, MastersCache
from order_capture.adapters.retention import retention_rules
from order_capture.api import events, reference
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts.topics import REFERENCE
from sellthrough_runtime.app import Job, ServiceContext, create_service_app, serve
from sellthrough_runtime.consumer import job_of
from sellthrough_runtime.dead_letters import ConsumerSpec
from sellthrough_runtime.outbox import OutboxRelay
from sellthrough_runtime.relay_thread import RelayThread
from sellthrough_runtime.workers import serve_with_workers

SERVICE = "order-capture"
SCHEMA = "order_capture"
MIGRATIONS = Path(__file__).parent / "migrations"


def consumer_spec() -> ConsumerSpec:
    """The reference-data consumer, as the service runs it and as `sellthrough-dead-letters` replays into it."""
    return ConsumerSpec(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        group_id="order-capture.reference",
        topics=(REFERENCE.name,),
        wanted_types=WANTED_TYPES,
        settings=OrderCaptureSettings,
        handler=lambda _settings: apply_reference_events,
    )


async def _start_jobs(context: ServiceContext) -> dict[str, Job]:
    settings = context.settings
    # On a loop of its own (relay_thread.py): in this process's loop each of its round trips would wait for the
    # CPU-bound request handlers' turns.
    relay = RelayThread(
        settings,
        SERVICE,
        SCHEMA,
        lambda pool: OutboxRelay(pool, settings.kafka_bootstrap_servers, SERVICE, security=settings),
    )
    context.relay = relay
    spec = consumer_spec()
    jobs = {
        "outbox-relay": relay.run,
        "reference-consumer": job_of(spec, context.pool, settings),
    }
    if isinstance(settings, OrderCaptureSettings) and settings.masters_cache:
        masters = MastersCache(SCHEMA)
        context.extensions[EXTENSION] = masters
        jobs["masters-cache"] = lambda: masters.listen(settings.database_url)
    return jobs


def create_app(settings: OrderCaptureSettings | None = None) -> FastAPI:
    settings = settings or OrderCaptureSettings()
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        settings=settings,
        routers=[events.router, reference.router],
        start_jobs=_start_jobs,
        ready_without_kafka=True,
        retention_rules=retention_rules,
        description="Ingest of field and connector events: validated, authorised, idempotent, published via outbox.",
    )


def run() -> None:
    settings = OrderCaptureSettings()
    if settings.http_workers > 1:
        serve_with_workers("order_capture.main:create_app", SERVICE, settings, settings.http_workers)
    else:
        serve(create_app(settings), settings)
