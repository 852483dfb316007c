"""What the ingest baselines share with order-capture's serving: the health routes the bench waits on, and uvicorn
with as many worker processes as order-capture serves with (SELLTHROUGH_HTTP_WORKERS, the same setting), so a
baseline differs from the service only in what its POST handler does."""

import os

import uvicorn
from fastapi import FastAPI

from order_capture.settings import OrderCaptureSettings


def add_health_routes(app: FastAPI) -> None:
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"])


def serve(app: FastAPI, import_path: str) -> None:
    """`import_path` ("bench.bare_app:app") lets uvicorn's workers import the app themselves."""
    workers = OrderCaptureSettings().http_workers
    port = int(os.environ["SELLTHROUGH_HTTP_PORT"])
    if workers > 1:
        uvicorn.run(import_path, workers=workers, host="127.0.0.1", port=port, log_level="warning")
    else:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
