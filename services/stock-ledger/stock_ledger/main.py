"""Composition root for stock-ledger."""

from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sellthrough_contracts.topics import REFERENCE, TRADE
from sellthrough_runtime.app import Job, ServiceContext, create_service_app
from sellthrough_runtime.consumer import consumer_job
from sellthrough_runtime.outbox import OutboxRelay
from stock_ledger.handler import ledger_handler
from stock_ledger.movements import STOCK_EVENT_TYPES
from stock_ledger.reevaluation import alert_reevaluation_job
from stock_ledger.settings import StockLedgerSettings

SERVICE = "stock-ledger"
SCHEMA = "stock_ledger"
LEDGER_GROUP = "stock-ledger.ledger"


async def _start_jobs(context: ServiceContext) -> dict[str, Job]:
    settings = context.settings
    assert isinstance(settings, StockLedgerSettings)
    return {
        "outbox-relay": OutboxRelay(context.pool, settings.kafka_bootstrap_servers, SERVICE).run,
        "alert-reevaluation": alert_reevaluation_job(context.pool, settings),
        "ledger-consumer": consumer_job(
            pool=context.pool,
            settings=settings,
            group_id=LEDGER_GROUP,
            topics=[REFERENCE.name, TRADE.name],
            handler=ledger_handler(settings),
            wanted_types=STOCK_EVENT_TYPES | {"SkuRegistered"},
        ),
    }


def create_app(settings: StockLedgerSettings | None = None) -> FastAPI:
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=Path(__file__).parent / "migrations",
        settings=settings or StockLedgerSettings(),
        start_jobs=_start_jobs,
        description="Distributor book stock from invoices, orders, deliveries, returns and counts; variances; "
        "overstock and stock-out alerts.",
    )


def run() -> None:
    settings = StockLedgerSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)
