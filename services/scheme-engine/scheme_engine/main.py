"""Composition root for scheme-engine: the evaluation consumer and the outbox relay of its derived events."""

from pathlib import Path

from fastapi import FastAPI

from scheme_engine.handlers.evaluation import SCHEME_ENGINE_TYPES, scheme_handler
from scheme_engine.settings import SchemeEngineSettings
from sellthrough_contracts.topics import REFERENCE, SCHEMES, TRADE
from sellthrough_runtime.app import Job, ServiceContext, create_service_app, serve
from sellthrough_runtime.consumer import job_of
from sellthrough_runtime.dead_letters import ConsumerSpec
from sellthrough_runtime.outbox import OutboxRelay
from sellthrough_runtime.settings import ServiceSettings

SERVICE = "scheme-engine"
SCHEMA = "scheme_engine"
EVALUATION_GROUP = "scheme-engine.evaluation"
MIGRATIONS = Path(__file__).parent / "migrations"


def consumer_spec() -> ConsumerSpec:
    """The evaluation consumer, as the service runs it and as `sellthrough-dead-letters` replays into it."""
    return ConsumerSpec(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        group_id=EVALUATION_GROUP,
        topics=(REFERENCE.name, SCHEMES.name, TRADE.name),
        wanted_types=SCHEME_ENGINE_TYPES,
        settings=SchemeEngineSettings,
        handler=lambda _settings: scheme_handler(),
    )


async def _start_jobs(context: ServiceContext) -> dict[str, Job]:
    settings = context.settings
    spec = consumer_spec()
    return {
        "outbox-relay": OutboxRelay(context.pool, settings.kafka_bootstrap_servers, SERVICE, security=settings).run,
        "evaluation-consumer": job_of(spec, context.pool, settings),
    }


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        settings=settings or SchemeEngineSettings(),
        start_jobs=_start_jobs,
        authenticates=False,  # no route takes a token
        description="Trade-scheme evaluation of every order (SchemeApplied) and claim assessment (ClaimAssessed).",
    )


def run() -> None:
    settings = SchemeEngineSettings()
    serve(create_app(settings), settings)
