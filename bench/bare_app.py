"""The ingest baseline: a bare FastAPI endpoint that reads and parses the same body as POST /v1/events
(orjson, as order-capture does) and answers, served by uvicorn the way order-capture is (with as many worker
processes). Run as a module."""

import orjson
from fastapi import FastAPI, Request, Response

from bench.baseline_serving import add_health_routes, serve

app = FastAPI()
add_health_routes(app)


@app.post("/v1/events")
async def post_events(request: Request) -> Response:
    events = orjson.loads(await request.body())["events"]
    body = orjson.dumps({"accepted": len(events), "duplicate": 0, "rejected": 0})
    return Response(body, media_type="application/json")


if __name__ == "__main__":
    serve(app, "bench.bare_app:app")
