"""When to try a request again: exponential backoff with full jitter, unless the server said when (Retry-After).

Jitter spreads a fleet of phones that lost the network together (a mall basement, a tower down) so they do not all
come back in the same second; Retry-After on 429 and 503 is the server's own estimate and beats any guess."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import tenacity
from tenacity import RetryCallState
from tenacity.wait import wait_base, wait_random_exponential

T = TypeVar("T")


class Retryable(Exception):
    """A failure worth retrying: the network, 429, 503 or another 5xx. `retry_after`: seconds the server asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class wait_retry_after_or(wait_base):
    """Wait as long as the server's Retry-After asks (capped), else as long as `fallback` says."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            return min(error.retry_after, self.cap)
        return float(self.fallback(retry_state))


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 0.5
    max_seconds: float = 60.0
    max_attempts: int = 8
    retry_after_cap_seconds: float = 300.0

    def run(self, attempt: Callable[[], T], sleep: Callable[[float], None] = tenacity.nap.sleep) -> T:
        """Call `attempt` until it returns or raises something other than Retryable; after max_attempts the last
        Retryable is raised."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Retryable),
            wait=wait_retry_after_or(
                wait_random_exponential(multiplier=self.base_seconds, max=self.max_seconds),
                self.retry_after_cap_seconds,
            ),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            sleep=sleep,
            reraise=True,
        )
        return retrying(attempt)
