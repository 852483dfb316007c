"""Composition root for stock-ledger. Its consumers arrive with their issue; today it runs its migrations (the
runtime's outbox, offsets and dead-letter tables in its own schema) and serves health and metrics."""

from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sellthrough_runtime.app import create_service_app
from sellthrough_runtime.settings import ServiceSettings

SERVICE = "stock-ledger"
SCHEMA = "stock_ledger"


class Settings(ServiceSettings):
    http_port: int = 8002


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    return create_service_app(
        service=SERVICE,
        schema=SCHEMA,
        migrations_dir=Path(__file__).parent / "migrations",
        settings=settings or Settings(),
        description="Distributor book stock, variances and stock alerts (issue 3).",
    )


def run() -> None:
    settings = Settings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)
