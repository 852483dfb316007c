import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

PIPELINE_WAIT_SECONDS = 60.0
"""How long a test waits for an event to travel through the broker into a projection. Far above the usual
second or two because the embedded broker (Tansu) sometimes leaves a newly joined consumer group member without
its assignment until the group rebalances again, two session timeouts later: data then arrives 15-20 s late
on a loaded 2-core machine (the same bug: nisshi-io/nisshi#625). Only a failing test waits this long."""


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    timeout: float = PIPELINE_WAIT_SECONDS,
    what: str = "condition",
) -> T:
    """Poll `probe` until `check` holds on its result. A probe that fails an assertion (say, a 404 before the
    data has arrived) counts as "not yet"; at the deadline the last value or failure is reported."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = await probe()
        except AssertionError as failure:
            last = failure
        else:
            if check(value):
                return value
            last = value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")
