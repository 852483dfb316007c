"""The ingest baseline: a bare FastAPI endpoint that reads and parses the same body as POST /v1/events
(orjson, as order-capture does) and answers, served by uvicorn the way order-capture is (with as many worker
processes). Run as a module."""

import os

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

from order_capture.settings import OrderCaptureSettings

app = FastAPI()


@app.post("/v1/events")
async def post_events(request: Request) -> Response:
    events = orjson.loads(await request.body())["events"]
    body = orjson.dumps({"accepted": len(events), "duplicate": 0, "rejected": 0})
    return Response(body, media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    # As many processes as order-capture serves with (SELLTHROUGH_HTTP_WORKERS, the same setting).
    workers = OrderCaptureSettings().http_workers
    port = int(os.environ["SELLTHROUGH_HTTP_PORT"])
    if workers > 1:
        uvicorn.run("bench.bare_app:app", workers=workers, host="127.0.0.1", port=port, log_level="warning")
    else:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
