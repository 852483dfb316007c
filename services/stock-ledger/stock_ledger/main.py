"""Composition root for stock-ledger."""

from pathlib import Path

from fastapi import FastAPI

from sellthrough_contracts.topics import REFERENCE, TRADE
from sellthrough_runtime.app import Job, ServiceContext, create_service_app, serve
from sellthrough_runtime.applier import Handler
from sellthrough_runtime.consumer import job_of
from sellthrough_runtime.dead_letters import ConsumerSpec
from sellthrough_runtime.outbox import OutboxRelay
from sellthrough_runtime.settings import ServiceSettings
from stock_ledger.handlers.ledger import LEDGER_TYPES, ledger_handler
from stock_ledger.handlers.reevaluation import alert_reevaluation_job
from stock_ledger.settings import StockLedgerSettings

SERVICE = "stock-ledger"
SCHEMA = "stock_ledger"
LEDGER_GROUP = "stock-ledger.ledger"
MIGRATIONS = Path(__file__).parent / "migrations"


def _handler(settings: ServiceSettings) -> Handler:
    assert isinstance(settings, StockLedgerSettings)
    return ledger_handler(settings)


def consumer_spec() -> ConsumerSpec:
    """The ledger consumer, as the service runs it and as `sellthrough-dead-letters` replays into it."""
    return ConsumerSpec(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        group_id=LEDGER_GROUP,
        topics=(REFERENCE.name, TRADE.name),
        wanted_types=LEDGER_TYPES,
        settings=StockLedgerSettings,
        handler=_handler,
    )


async def _start_jobs(context: ServiceContext) -> dict[str, Job]:
    settings = context.settings
    assert isinstance(settings, StockLedgerSettings)
    spec = consumer_spec()
    return {
        "outbox-relay": OutboxRelay(context.pool, settings.kafka_bootstrap_servers, SERVICE, security=settings).run,
        "alert-reevaluation": alert_reevaluation_job(context.pool, settings),
        "ledger-consumer": job_of(spec, context.pool, settings),
    }


def create_app(settings: StockLedgerSettings | None = None) -> FastAPI:
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        settings=settings or StockLedgerSettings(),
        start_jobs=_start_jobs,
        authenticates=False,  # no route takes a token
        description="Distributor book stock from invoices, orders, deliveries, returns and counts; variances; "
        "overstock and stock-out alerts.",
    )


def run() -> None:
    settings = StockLedgerSettings()
    serve(create_app(settings), settings)
