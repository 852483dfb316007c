"""Costly reads (seconds of CPU, such as query-api's anomalies over every distributor x SKU) cached for a short
time and bounded in concurrency, so a dashboard refreshing, or a client retrying, cannot keep the CPU busy.

Decorate the route with `@costly_read("name")` (below the router's decorator), or `@costly_read("name",
cache=False)` for a read clients poll for fresh figures: only the sharing and the bound below apply then.

The answer is cached per app for `costly_read_ttl_s`, keyed by the route, every query parameter, the business
day and the caller's scope (role, subject, bound distributors, geography): two callers with different scopes
never share an answer, even once routes filter by scope. At most `costly_read_max_entries` answers are kept
(least recently used go first). Identical requests arriving while one is computed wait for that computation
instead of repeating it. At most `costly_read_max_concurrent` computations of a read run at once per process;
a request finding none free within `costly_read_max_wait_s` is answered 503 with Retry-After. Errors (404, 422)
are never cached.
"""

import asyncio
import functools
import inspect
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from sellthrough_runtime.auth import CurrentPrincipal
from sellthrough_runtime.metrics import COSTLY_READS
from sellthrough_runtime.problems import ProblemError

T = TypeVar("T")
BUSY_RETRY_AFTER_S = 2


class CostlyReads:
    """One read's cache and concurrency bound."""

    def __init__(
        self, service: str, read: str, *, ttl_s: float, max_entries: int, max_concurrent: int, max_wait_s: float
    ) -> None:
        """`ttl_s` 0: nothing is cached, computations are only shared while under way and bounded."""
        self._service = service
        self._read = read
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._max_wait_s = max_wait_s
        self._slots = asyncio.Semaphore(max_concurrent)
        self._answers: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._under_way: dict[Hashable, asyncio.Task[Any]] = {}

    async def answer(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached answer for `key`, the one being computed, or a new computation's."""
        cached = self._answers.get(key)
        if cached is not None and cached[0] > time.monotonic():
            self._answers.move_to_end(key)
            self._count("hit")
            return cached[1]  # type: ignore[no-any-return]
        task = self._under_way.get(key)
        if task is not None:
            self._count("shared")
        else:
            task = asyncio.create_task(self._compute(key, compute))
            self._under_way[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a client hanging up must not cancel a computation others may be waiting for.
        return await asyncio.shield(task)

    def _finished(self, key: Hashable, task: "asyncio.Task[Any]") -> None:
        self._under_way.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have hung up, and asyncio would log it as lost

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            await asyncio.wait_for(self._slots.acquire(), self._max_wait_s)
        except TimeoutError:
            self._count("busy")
            raise ProblemError(
                503,
                "busy",
                "Too many costly reads are being computed; retry shortly.",
                f"'{self._read}' is computed for other requests right now.",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            ) from None
        try:
            value = await compute()
        finally:
            self._slots.release()
        self._count("computed")
        if self._ttl_s > 0:
            self._answers[key] = (time.monotonic() + self._ttl_s, value)
            self._answers.move_to_end(key)
            while len(self._answers) > self._max_entries:
                self._answers.popitem(last=False)
        return value

    def _count(self, outcome: str) -> None:
        COSTLY_READS.labels(self._service, self._read, outcome).inc()


@dataclass(frozen=True)
class ReadKey:
    """What a costly read's answer depends on besides the data: the request and who asks."""

    read: "CostlyReads"
    key: Hashable


def _reads_of(request: Request, read: str, cache: bool) -> CostlyReads:
    """The app's cache of `read`, made on first use (per app: tests run several apps in one process)."""
    caches: dict[str, CostlyReads] | None = getattr(request.app.state, "costly_reads", None)
    if caches is None:
        caches = request.app.state.costly_reads = {}
    if read not in caches:
        context = request.app.state.context
        settings = context.settings
        caches[read] = CostlyReads(
            context.service,
            read,
            ttl_s=settings.costly_read_ttl_s if cache else 0,
            max_entries=settings.costly_read_max_entries,
            max_concurrent=settings.costly_read_max_concurrent,
            max_wait_s=settings.costly_read_max_wait_s,
        )
    return caches[read]


def costly_read(
    read: str, *, cache: bool = True
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Serve the decorated route's answers through the app's `read` cache (see the module docstring); with
    `cache=False` (a read clients poll for fresh figures) answers are not kept, only shared by identical requests
    while computed, and bounded. The route keeps its signature (FastAPI still documents and validates its
    parameters); the caller's principal and the request are added as hidden dependencies, resolved once per
    request like the route's own."""

    def key_of(request: Request, principal: CurrentPrincipal) -> ReadKey:
        today = datetime.now(request.app.state.context.settings.zone).date()
        scope = (
            principal.role.value,
            principal.subject,
            tuple(sorted(principal.distributors)),
            tuple(sorted(principal.geo_ids)),
        )
        query = tuple(sorted(request.query_params.multi_items()))
        return ReadKey(_reads_of(request, read, cache), (request.url.path, query, today, scope))

    def decorate(route: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        signature = inspect.signature(route)

        @functools.wraps(route)
        async def cached(*args: Any, costly_read_key_: ReadKey, **kwargs: Any) -> T:
            return await costly_read_key_.read.answer(costly_read_key_.key, lambda: route(*args, **kwargs))

        hidden = inspect.Parameter(
            "costly_read_key_", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[ReadKey, Depends(key_of)]
        )
        cached.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), hidden]
        )
        return cached

    return decorate
