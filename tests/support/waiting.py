import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 15, what: str = "condition"
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
