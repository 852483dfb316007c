"""Per-token rate limits: past its limit a token gets 429 problem+json with Retry-After.

Keyed by the token's role and subject, not the caller's address: many phones share one carrier NAT, and one
runaway client should not lock out a whole territory.

Counted in PostgreSQL, in the service's own schema (table rate_limit_windows), so every worker process and
replica of a service shares one count per token: N workers do not allow N times the limit. Each limit is a
sliding-window estimate from two fixed windows: the current window's count plus the previous window's count
weighted by how much of it still overlaps the sliding window (Cloudflare's approximation; exact for an even
rate, and never more than the previous window's count off). One statement per request reads the previous
window and conditionally adds the request's weight to the current one, under the row's lock: concurrent
requests cannot both take the last unit. A refused request is not counted, so a client that waits Retry-After
gets through. Windows are stamped by the database's clock, so replicas with skewed clocks agree.

A request weighs 1; POST /v1/events weighs the events of its batch (`charge`). A weight above the whole limit
is taken as the limit: such a batch passes on an empty window and uses all of it, rather than never passing.
"""

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from fastapi import Request
from limits import RateLimitItem, parse_many

from sellthrough_runtime.metrics import RATE_LIMITED
from sellthrough_runtime.problems import DATABASE_UNAVAILABLE, ProblemError

log = logging.getLogger(__name__)

UNLIMITED = "unlimited"

CLEANUP_INTERVAL_S = 60.0
"""How often each process deletes windows too old to count (at most two windows back matter)."""

_COUNT = """
WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
wanted AS (
    SELECT w.key, w.seconds, w.amount, w.weight, clock.now,
           (floor(clock.now / w.seconds) * w.seconds)::bigint AS window_start
    FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS w(key, seconds, amount, weight), clock
),
judged AS (
    SELECT wanted.*, coalesce(previous.hits, 0) AS previous_hits,
           wanted.amount - coalesce(previous.hits, 0) * (1 - (wanted.now - wanted.window_start) / wanted.seconds)
               AS allowance
    FROM wanted
    LEFT JOIN rate_limit_windows AS previous
        ON previous.key = wanted.key AND previous.window_start = wanted.window_start - wanted.seconds
),
counted AS (
    INSERT INTO rate_limit_windows AS w (key, window_start, expires_at, hits, allowance, weight, admitted)
    SELECT key, window_start, window_start + 2 * seconds, CASE WHEN weight <= allowance THEN weight ELSE 0 END,
           allowance, weight, weight <= allowance
    FROM judged
    ON CONFLICT (key, window_start) DO UPDATE SET
        hits = CASE WHEN w.hits + EXCLUDED.weight <= EXCLUDED.allowance THEN w.hits + EXCLUDED.weight ELSE w.hits END,
        admitted = w.hits + EXCLUDED.weight <= EXCLUDED.allowance
    RETURNING w.key, w.window_start, w.hits, w.admitted
)
SELECT counted.key, counted.window_start, counted.hits, counted.admitted, judged.previous_hits,
       judged.now - judged.window_start AS elapsed
FROM counted JOIN judged USING (key)
"""

_UNCOUNT = """
UPDATE rate_limit_windows AS w SET hits = greatest(0, w.hits - u.weight)
FROM unnest($1::text[], $2::bigint[], $3::int[]) AS u(key, window_start, weight)
WHERE w.key = u.key AND w.window_start = u.window_start
"""

_CLEAN = "DELETE FROM rate_limit_windows WHERE expires_at < extract(epoch FROM clock_timestamp())"


def parse_rate_limit(text: str) -> list[RateLimitItem]:
    """'600/minute', or several at once ('20/second;600/minute'); 'unlimited' is no limit at all."""
    if text.strip().lower() == UNLIMITED:
        return []
    try:
        return list(parse_many(text))
    except ValueError as error:
        raise ValueError(f"not a rate limit: {text!r} (say '600/minute', '20/second;600/minute' or 'unlimited')") from (
            error
        )


@dataclass(frozen=True)
class _Count:
    item: RateLimitItem
    weight: int
    window_start: int
    hits: int
    admitted: bool
    previous_hits: int
    elapsed: float

    def retry_after(self) -> int:
        """Seconds until a request of the same weight would fit, if nothing else is counted meanwhile."""
        amount, seconds = self.item.amount, self.item.get_expiry()
        room = amount - self.hits - self.weight
        if room >= 0 and self.previous_hits > 0:  # fits once enough of the previous window has slid out
            wait = seconds * (1 - room / self.previous_hits) - self.elapsed
        else:  # only once this window is the previous one and has partly slid out
            wait = seconds - self.elapsed + seconds * max(0.0, 1 - (amount - self.weight) / max(self.hits, 1))
        return max(1, math.ceil(wait))


class TokenRateLimiter:
    """The limits of each role, counted per token (role + subject) in the service's database."""

    def __init__(self, service: str, limits_by_role: Mapping[str, str], pool: asyncpg.Pool) -> None:
        self._service = service
        self._limits = {role: parse_rate_limit(text) for role, text in limits_by_role.items()}
        self._pool = pool
        self._next_cleanup = 0.0
        self._cleanup: asyncio.Task[None] | None = None

    async def check(self, role: str, subject: str, weight: int = 1) -> None:
        """Count `weight` units of the token, or refuse them all (429) if any of its role's limits would be
        exceeded. Unlimited roles cost no database round trip."""
        items = self._limits.get(role, [])
        if not items or weight <= 0:
            return
        weights = [min(weight, item.amount) for item in items]
        try:
            rows = await self._pool.fetch(
                _COUNT,
                [self._key(role, subject, item) for item in items],
                [item.get_expiry() for item in items],
                [item.amount for item in items],
                weights,
            )
        except DATABASE_UNAVAILABLE:
            # Fail open: the limit shields the database, and with it down every request that needs it answers 503
            # anyway; those that do not (a token the process has seen, /v1/whoami) should not fail for want of a
            # counter.
            log.warning("rate limit not counted: the database is unavailable", extra={"role": role})
            return
        by_key = {row["key"]: row for row in rows}
        counts = [
            _Count(
                item,
                w,
                (row := by_key[self._key(role, subject, item)])["window_start"],
                row["hits"],
                row["admitted"],
                row["previous_hits"],
                row["elapsed"],
            )
            for item, w in zip(items, weights, strict=True)
        ]
        self._clean_now_and_then()
        refused = [c for c in counts if not c.admitted]
        if not refused:
            return
        admitted = [c for c in counts if c.admitted]
        if admitted:  # refused by one limit: the units the others took back (rare: several limits at once)
            await self._pool.execute(
                _UNCOUNT,
                [self._key(role, subject, c.item) for c in admitted],
                [c.window_start for c in admitted],
                [c.weight for c in admitted],
            )
        RATE_LIMITED.labels(self._service, role).inc()
        exhausted = refused[0]
        retry_after = max(c.retry_after() for c in refused)
        raise ProblemError(
            429,
            "too-many-requests",
            "Too many requests for this token; slow down.",
            f"A {role} token may make at most {exhausted.item}"
            + (f" (this request weighs {weight})" if weight > 1 else "")
            + f"; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            limit=str(exhausted.item),
        )

    @staticmethod
    def _key(role: str, subject: str, item: RateLimitItem) -> str:
        return f"{role}:{item.amount}/{item.get_expiry()}s:{subject}"

    def _clean_now_and_then(self) -> None:
        now = time.monotonic()
        if now < self._next_cleanup or (self._cleanup is not None and not self._cleanup.done()):
            return
        self._next_cleanup = now + CLEANUP_INTERVAL_S
        self._cleanup = asyncio.create_task(self._clean())

    async def _clean(self) -> None:
        try:
            await self._pool.execute(_CLEAN)
        except Exception:  # a missed cleanup only leaves rows for the next one
            log.warning("rate-limit cleanup failed", exc_info=True)


async def charge(request: Request, role: str, subject: str, units: int) -> None:
    """Count `units` more against the token of an already authenticated request (which counted 1): a route
    whose cost grows with its input, as a batch of events does. 429 past the limit."""
    limiter: TokenRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and units > 0:
        await limiter.check(role, subject, units)
