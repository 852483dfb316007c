"""The rate limiter itself, counting in a real PostgreSQL schema as a service does (over HTTP, with workers:
tests/integration/test_request_limits.py)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY

from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.ratelimit import TokenRateLimiter
from tests.conftest import Infra
from tests.support.waiting import eventually

SCHEMA = "rate_limit_test"


def refusals(service: str, role: str) -> float:
    return REGISTRY.get_sample_value("sellthrough_rate_limited_total", {"service": service, "role": role}) or 0.0


@pytest.fixture
async def pool(infra: Infra, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    """A schema with the runtime's tables only (the service's own migrations: none)."""
    await migrate(infra.database_url, SCHEMA, tmp_path)
    pool = await create_pool(infra.database_url, SCHEMA, min_size=1, max_size=20)
    await pool.execute("TRUNCATE rate_limit_windows")
    try:
        yield pool
    finally:
        await pool.close()


async def test_a_token_past_its_limit_is_refused_with_429_and_retry_after(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-429", {"rep": "3/minute"}, pool)
    for _ in range(3):
        await limiter.check("rep", "REP-1")
    before = refusals("unit-429", "rep")

    with pytest.raises(ProblemError) as refused:
        await limiter.check("rep", "REP-1")

    assert (refused.value.status, refused.value.slug) == (429, "too-many-requests")
    assert refused.value.headers is not None
    # The window's requests slide out of the estimate within two windows.
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 120
    assert refused.value.extensions["limit"] == "3 per 1 minute"
    assert refusals("unit-429", "rep") == before + 1


async def test_limiters_sharing_a_schema_share_the_count(pool: asyncpg.Pool) -> None:
    """Two processes (workers, replicas) are two limiters on one table: one limit in total."""
    first = TokenRateLimiter("unit-shared", {"analyst": "4/hour"}, pool)
    second = TokenRateLimiter("unit-shared", {"analyst": "4/hour"}, pool)
    await first.check("analyst", "A")
    await second.check("analyst", "A")
    await first.check("analyst", "A")
    await second.check("analyst", "A")
    for limiter in (first, second):
        with pytest.raises(ProblemError):
            await limiter.check("analyst", "A")


async def test_concurrent_requests_cannot_take_more_than_the_limit(pool: asyncpg.Pool) -> None:
    limiters = [TokenRateLimiter("unit-race", {"rep": "25/hour"}, pool) for _ in range(4)]

    async def attempt(i: int) -> bool:
        try:
            await limiters[i % 4].check("rep", "REP-race")
        except ProblemError:
            return False
        return True

    admitted = await asyncio.gather(*(attempt(i) for i in range(60)))

    assert sum(admitted) == 25


async def test_a_weight_counts_as_that_many_requests(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-weight", {"connector": "10/hour"}, pool)
    await limiter.check("connector", "erp-1", 7)
    with pytest.raises(ProblemError) as refused:
        await limiter.check("connector", "erp-1", 4)
    assert "weighs 4" in str(refused.value.detail)
    await limiter.check("connector", "erp-1", 3)  # the refused 4 were not counted: 7 + 3 fit
    with pytest.raises(ProblemError):
        await limiter.check("connector", "erp-1")


async def test_a_weight_above_the_whole_limit_passes_alone_and_uses_it_all(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-heavy", {"rep": "5/hour"}, pool)
    await limiter.check("rep", "REP-1", 50)
    with pytest.raises(ProblemError):
        await limiter.check("rep", "REP-1")


async def test_each_token_has_its_own_window_keyed_by_role_and_subject(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-keys", {"rep": "1/minute", "analyst": "1/minute"}, pool)
    await limiter.check("rep", "REP-1")
    await limiter.check("rep", "REP-2")  # another rep: its own window
    await limiter.check("analyst", "REP-1")  # the same subject under another role: its own window too
    with pytest.raises(ProblemError):
        await limiter.check("rep", "REP-1")


async def test_refused_requests_do_not_count_so_the_limit_slides_back(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-wait", {"connector": "2/second"}, pool)
    await limiter.check("connector", "erp-1")
    await limiter.check("connector", "erp-1")
    for _ in range(5):  # a client hammering while refused does not push its window further out
        with pytest.raises(ProblemError):
            await limiter.check("connector", "erp-1")
    await asyncio.sleep(2.1)  # both requests have slid out of the estimate
    await limiter.check("connector", "erp-1")
    await limiter.check("connector", "erp-1")


async def test_unlimited_roles_and_unknown_roles_are_never_refused_nor_counted(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-unlimited", {"admin": "unlimited"}, pool)
    for _ in range(500):
        await limiter.check("admin", "admin")
        await limiter.check("someone", "else")
    assert await pool.fetchval("SELECT count(*) FROM rate_limit_windows") == 0


async def test_several_limits_at_once_each_apply_and_a_refusal_takes_nothing(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-several", {"rep": "2/second;3/hour"}, pool)
    await limiter.check("rep", "REP-1")
    await limiter.check("rep", "REP-1")
    with pytest.raises(ProblemError) as per_second:
        await limiter.check("rep", "REP-1")
    assert per_second.value.extensions["limit"] == "2 per 1 second"
    # The per-second refusal gave back what the per-hour limit had counted: 2 of 3 used, not 3.
    hourly = await pool.fetchval("SELECT sum(hits) FROM rate_limit_windows WHERE key LIKE 'rep:3/3600s:%'")
    assert hourly == 2
    await asyncio.sleep(2.1)
    await limiter.check("rep", "REP-1")
    with pytest.raises(ProblemError) as per_hour:
        await limiter.check("rep", "REP-1")
    assert per_hour.value.extensions["limit"] == "3 per 1 hour"


async def test_old_windows_are_deleted(pool: asyncpg.Pool) -> None:
    limiter = TokenRateLimiter("unit-clean", {"rep": "5/second"}, pool)
    await limiter.check("rep", "REP-old")
    await asyncio.sleep(2.1)  # the window and the one after it are over: nothing left to count it in
    cleaner = TokenRateLimiter("unit-clean", {"rep": "5/second"}, pool)  # a fresh process cleans on first use
    await cleaner.check("rep", "REP-new")
    old = "SELECT count(*) FROM rate_limit_windows WHERE key LIKE '%REP-old'"
    await eventually(lambda: pool.fetchval(old), lambda count: count == 0, timeout=5, what="old windows deleted")
