"""The ingest baseline: a bare FastAPI endpoint that reads and parses the same body as POST /v1/events
(orjson, as order-capture does) and answers, served by uvicorn the way order-capture is (same worker count).
Run as a module."""

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


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    # As many processes as order-capture runs by default, so both sides of the ratio may use both cores.
    uvicorn.run(
        "bench.bare_app:app",
        host="127.0.0.1",
        port=int(os.environ["SELLTHROUGH_HTTP_PORT"]),
        workers=OrderCaptureSettings().http_workers,
        log_level="warning",
    )
