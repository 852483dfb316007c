"""The location-verification baseline: order-capture exactly as it runs, with its location check taken out (no
outlet places loaded, no verdict, no LocationChecked outbox row). Run as a module, with order-capture's settings;
only the benchmark starts it, to measure what verification costs in the same run (docs/benchmarks.md, scenario 7).
"""

from collections.abc import Mapping
from uuid import UUID

import asyncpg
from fastapi import FastAPI

import order_capture.adapters.store
import order_capture.handlers.accept_batch
from order_capture import main
from order_capture.domain.verification import Checked, OutletPlace
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import Envelope
from sellthrough_runtime.workers import serve_with_workers


async def _no_places(conn: asyncpg.Connection, events: list[Envelope]) -> dict[str, OutletPlace]:
    return {}


def _nothing_checked(
    events: list[Envelope], places: Mapping[str, OutletPlace], settings: OrderCaptureSettings
) -> dict[UUID, Checked]:
    return {}


# Replaced on import, so every worker process (each imports create_app below by name) runs without the check.
order_capture.adapters.store.load_outlet_places = _no_places  # type: ignore[attr-defined]
order_capture.handlers.accept_batch.check_locations = _nothing_checked  # type: ignore[attr-defined]


def create_app() -> FastAPI:
    return main.create_app()


if __name__ == "__main__":
    settings = OrderCaptureSettings()
    if settings.http_workers > 1:
        serve_with_workers("bench.unchecked_order_capture:create_app", main.SERVICE, settings, settings.http_workers)
    else:
        import uvicorn

        uvicorn.run(create_app(), host=settings.http_host, port=settings.http_port, log_config=None)
