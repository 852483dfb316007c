"""The ingest baseline "bare-durable": what any service that accepts events durably must do, and nothing else.
For each POST it parses the body (orjson), then, in one transaction, inserts each event's idempotency record and
queues the event in the outbox: the statements order-capture runs (its idempotency_keys INSERT, the runtime's
append_records_to_outbox), into tables made by order-capture's own migrations in a schema of its own
(BENCH_DURABLE_SCHEMA). No validation, no reference data, no business keys. Served by uvicorn with as many worker
processes as order-capture. Run as a module; the bench migrates the schema first."""

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from bench.baseline_serving import add_health_routes, serve
from order_capture.settings import OrderCaptureSettings
from sellthrough_runtime.db import create_pool
from sellthrough_runtime.outbox import OutboxRecord, append_records_to_outbox

# order-capture's statement (order_capture/adapters/store.py), on the same table shape.
_IDEMPOTENCY = (
    "INSERT INTO idempotency_keys (event_id, content_hash, event_type) "
    "SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id"
)

_pool: list[asyncpg.Pool] = []


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    settings = OrderCaptureSettings()
    pool = await create_pool(
        os.environ["DATABASE_URL"],
        os.environ["BENCH_DURABLE_SCHEMA"],
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
    )
    _pool.append(pool)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)
add_health_routes(app)


def _record(event: dict[str, Any]) -> tuple[OutboxRecord, bytes]:
    # One encode serves as both the content hashed and the wire form (what order-capture's accepted form does).
    value = orjson.dumps(event)
    payload = event.get("payload") or {}
    key = str(payload.get("distributor_id") or event.get("actor") or "")
    record = OutboxRecord(uuid.UUID(event["event_id"]), event["event_type"], 1, key, value)
    return record, hashlib.sha256(value).digest()


@app.post("/v1/events")
async def post_events(request: Request) -> Response:
    events = orjson.loads(await request.body())["events"]
    pairs = [_record(e) for e in events]
    # Keys in one order by every request, as order-capture does: overlapping batches wait, never deadlock.
    by_id = sorted(pairs, key=lambda p: p[0].event_id)
    async with _pool[0].acquire() as conn, conn.transaction():
        inserted = await conn.fetch(
            _IDEMPOTENCY,
            [r.event_id for r, _ in by_id],
            [h for _, h in by_id],
            [r.event_type for r, _ in by_id],
        )
        new = {row["event_id"] for row in inserted}
        await append_records_to_outbox(conn, [r for r, _ in pairs if r.event_id in new])
    body = orjson.dumps({"accepted": len(new), "duplicate": len(pairs) - len(new), "rejected": 0})
    return Response(body, media_type="application/json")


if __name__ == "__main__":
    serve(app, "bench.bare_durable_app:app")
