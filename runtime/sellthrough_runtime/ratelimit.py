"""Per-token rate limits: past its limit a token gets 429 problem+json with Retry-After.

Keyed by the token's role and subject, not the caller's address: many phones share one carrier NAT, and one
runaway client should not lock out a whole territory. Counting is the `limits` package's moving window in
process memory, so each instance of a service counts on its own: N replicas allow up to N times the limit.
That bounds a runaway client, which is what this is for; a shared store would be needed for exact quotas.
"""

import math
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from sellthrough_runtime.metrics import RATE_LIMITED
from sellthrough_runtime.problems import ProblemError

UNLIMITED = "unlimited"


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


class TokenRateLimiter:
    """One moving window per token (role + subject) and configured limit."""

    def __init__(self, service: str, limits_by_role: Mapping[str, str]) -> None:
        self._service = service
        self._limits = {role: parse_rate_limit(text) for role, text in limits_by_role.items()}
        self._windows = MovingWindowRateLimiter(MemoryStorage())

    def check(self, role: str, subject: str) -> None:
        """Count one request of the token, or refuse it (429) if any of its role's limits is used up. A refused
        request is not counted, so a client that waits Retry-After gets through."""
        items = self._limits.get(role, [])
        key = f"{role}:{subject}"
        exhausted = next((item for item in items if not self._windows.test(item, key)), None)
        if exhausted is not None:
            RATE_LIMITED.labels(self._service, role).inc()
            reset_at = self._windows.get_window_stats(exhausted, key).reset_time
            retry_after = max(1, math.ceil(reset_at - time.time()))
            raise ProblemError(
                429,
                "too-many-requests",
                "Too many requests for this token; slow down.",
                f"A {role} token may make at most {exhausted}; retry in {retry_after} s.",
                headers={"Retry-After": str(retry_after)},
                limit=str(exhausted),
            )
        for item in items:
            self._windows.hit(item, key)
