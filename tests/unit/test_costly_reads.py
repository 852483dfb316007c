"""The costly-read cache and its concurrency bound on their own (over HTTP, keyed by caller scope:
tests/integration/test_request_limits.py)."""

import asyncio

import pytest

from sellthrough_runtime.costly_reads import CostlyReads
from sellthrough_runtime.problems import ProblemError


def reads(**overrides: float) -> CostlyReads:
    settings: dict[str, float] = {"ttl_s": 60, "max_entries": 10, "max_concurrent": 2, "max_wait_s": 5} | overrides
    return CostlyReads(
        "unit",
        "read",
        ttl_s=settings["ttl_s"],
        max_entries=int(settings["max_entries"]),
        max_concurrent=int(settings["max_concurrent"]),
        max_wait_s=settings["max_wait_s"],
    )


class Computation:
    """Counts its runs; each run can be held until released."""

    def __init__(self, hold: bool = False) -> None:
        self.runs = 0
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self) -> int:
        self.runs += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return self.runs


async def test_an_answer_is_served_from_the_cache_until_its_ttl() -> None:
    cache, compute = reads(ttl_s=0.2), Computation()
    assert await cache.answer("q", compute) == 1
    assert await cache.answer("q", compute) == 1
    assert await cache.answer("other", compute) == 2
    await asyncio.sleep(0.25)
    assert await cache.answer("q", compute) == 3


async def test_the_least_recently_used_answers_go_beyond_max_entries() -> None:
    cache, compute = reads(max_entries=2), Computation()
    await cache.answer("a", compute)
    await cache.answer("b", compute)
    await cache.answer("a", compute)  # a is now the most recently used
    await cache.answer("c", compute)  # b goes
    assert compute.runs == 3
    await cache.answer("a", compute)
    assert compute.runs == 3
    await cache.answer("b", compute)
    assert compute.runs == 4


async def test_identical_requests_share_one_computation() -> None:
    cache, compute = reads(), Computation(hold=True)
    waiting = [asyncio.create_task(cache.answer("q", compute)) for _ in range(5)]
    await asyncio.sleep(0.05)
    compute.release.set()
    assert await asyncio.gather(*waiting) == [1] * 5
    assert compute.runs == 1


async def test_computations_are_bounded_and_the_excess_waits_then_gets_503() -> None:
    cache, compute = reads(max_concurrent=2, max_wait_s=0.3), Computation(hold=True)
    running = [asyncio.create_task(cache.answer(key, compute)) for key in ("a", "b")]
    await asyncio.sleep(0.05)

    with pytest.raises(ProblemError) as busy:  # no slot freed within max_wait_s
        await cache.answer("c", compute)

    assert busy.value.status == 503
    assert busy.value.headers == {"Retry-After": "2"}
    waiting = asyncio.create_task(cache.answer("d", compute))
    await asyncio.sleep(0.05)
    assert compute.runs == 2  # d waits for a slot
    compute.release.set()
    await asyncio.gather(*running, waiting)
    assert (compute.runs, compute.most_at_once) == (3, 2)


async def test_errors_are_not_cached() -> None:
    cache, calls = reads(), 0

    async def failing_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ProblemError(404, "unknown", "Not yet.")
        return "found"

    with pytest.raises(ProblemError):
        await cache.answer("q", failing_once)
    assert await cache.answer("q", failing_once) == "found"


async def test_without_a_cache_answers_are_only_shared_while_computed() -> None:
    cache, compute = reads(ttl_s=0), Computation(hold=True)
    together = [asyncio.create_task(cache.answer("q", compute)) for _ in range(3)]
    await asyncio.sleep(0.05)
    compute.release.set()
    assert await asyncio.gather(*together) == [1, 1, 1]
    assert await cache.answer("q", compute) == 2  # computed again: nothing was kept
