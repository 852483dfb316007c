"""The delivery outbox as the admin API reads it: deliveries by status, and a dead letter sent again."""

import asyncpg

_DELIVERIES = """
SELECT delivery_id, subscription_id, idempotency_key, status, attempts,
       CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,
       last_status, last_error, created_at, delivered_at
FROM notify_deliveries
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR subscription_id = $2)
ORDER BY delivery_id DESC LIMIT $3
"""
_RETRY = """
UPDATE notify_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now()
WHERE delivery_id = $1 AND status = 'dead'
"""


async def deliveries(
    conn: asyncpg.Connection, status: str | None, subscription_id: str | None, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_DELIVERIES, status, subscription_id, limit))


async def retry_dead(conn: asyncpg.Connection, delivery_id: int) -> bool:
    """A dead delivery back to pending, attempts starting over; False if there is no such dead letter."""
    return str(await conn.execute(_RETRY, delivery_id)) != "UPDATE 0"
