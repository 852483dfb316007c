"""When a failed webhook delivery is tried again: exponential backoff with jitter, capped."""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_seconds: float
    max_seconds: float

    def delay(self, attempts: int, rand: random.Random | None = None) -> float:
        """The wait after the `attempts`-th failure: base * 2^(attempts-1), capped, then "equal jitter" (a uniform
        draw in its upper half), so receivers coming back from an outage are not hit by every sender at once while
        the wait still grows with each failure."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        draw: float = (rand or random).uniform(0.5, 1.0)
        return ceiling * draw
