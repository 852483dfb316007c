"""Sending the delivery outbox: due rows claimed with a lease, POSTed signed, then marked delivered, retried later
(exponential backoff with jitter, next_attempt_at) or dead-lettered after the last attempt, with the last error.

A claim moves the rows' next_attempt_at a lease ahead in one statement (FOR UPDATE SKIP LOCKED), so two replicas
never send the same row at once and no transaction is held open over HTTP; a process dying mid-send leaves the
row to be sent again when the lease runs out (at least once: receivers drop repeats by X-Sellthrough-Delivery)."""

import logging
import time
from dataclasses import dataclass

import asyncpg
import httpx

from query_api.notify.backoff import Backoff
from query_api.notify.signing import DELIVERY_HEADER, SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)

_CLAIM = """
UPDATE notify_deliveries d SET next_attempt_at = now() + make_interval(secs => $2)
FROM notify_subscriptions s
WHERE s.subscription_id = d.subscription_id AND d.delivery_id IN (
    SELECT delivery_id FROM notify_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, delivery_id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING d.delivery_id, d.idempotency_key, d.body, d.attempts, s.webhook_url, s.secret
"""
_DELIVERED = """
UPDATE notify_deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = now(), last_status = $2,
    last_error = NULL
WHERE delivery_id = $1 AND status = 'pending'
"""
_FAILED = """
UPDATE notify_deliveries
SET attempts = attempts + 1, last_error = $2, last_status = $3,
    status = CASE WHEN attempts + 1 >= $4 THEN 'dead' ELSE 'pending' END,
    next_attempt_at = now() + make_interval(secs => $5)
WHERE delivery_id = $1 AND status = 'pending'
"""
_ERROR_CHARS = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int
    backoff: Backoff
    timeout_seconds: float
    batch: int = 50

    @property
    def lease_seconds(self) -> float:
        return self.timeout_seconds * 3


@dataclass(frozen=True)
class Outcome:
    delivered: int = 0
    failed: int = 0


async def _send(client: httpx.AsyncClient, row: asyncpg.Record) -> tuple[int | None, str | None]:
    """(HTTP status, error); error None when the receiver answered 2xx."""
    body = str(row["body"]).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(row["secret"], int(time.time()), body),
        DELIVERY_HEADER: row["idempotency_key"],
    }
    try:
        response = await client.post(row["webhook_url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text}"[:_ERROR_CHARS]


async def deliver_due(pool: asyncpg.Pool, policy: DeliveryPolicy, client: httpx.AsyncClient | None = None) -> Outcome:
    """Send every due delivery once (a batch at a time); how many were delivered and how many failed."""
    delivered = failed = 0
    owned = client is None
    http = client or httpx.AsyncClient(timeout=policy.timeout_seconds, follow_redirects=False)
    try:
        while True:
            rows = await pool.fetch(_CLAIM, policy.batch, policy.lease_seconds)
            if not rows:
                break
            for row in rows:
                status, error = await _send(http, row)
                if error is None:
                    await pool.execute(_DELIVERED, row["delivery_id"], status)
                    delivered += 1
                    continue
                attempts = int(row["attempts"]) + 1
                wait = policy.backoff.delay(attempts)
                await pool.execute(_FAILED, row["delivery_id"], error, status, policy.max_attempts, wait)
                failed += 1
                log.warning(
                    "webhook delivery failed",
                    extra={"delivery": row["idempotency_key"], "attempts": attempts, "error": error},
                )
            if len(rows) < policy.batch:
                break
    finally:
        if owned:
            await http.aclose()
    return Outcome(delivered, failed)
