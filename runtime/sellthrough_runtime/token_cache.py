"""Each process's view of the token store: requests read memory, never wait on the database for a known token.

- Tokens seen by this process are re-read every `refresh_seconds` (one indexed query for all of them), so a
  revocation or rotation reaches every worker and replica within that time, without a restart.
- A token not seen before is looked up at once, so a newly issued token works on its first request. Lookups
  waiting at the same moment share one query, and one query at a time runs per process, so a flood of random
  tokens costs the database one query per round trip, not one per request; a hash found absent is remembered for
  `negative_seconds`, so the same wrong token repeated costs nothing.
- Expiry is checked on every request against the clock, so it is exact, not refresh-bound.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sellthrough_runtime.token_store import StoredToken

log = logging.getLogger(__name__)

Fetch = Callable[[Sequence[str]], Awaitable[list[StoredToken]]]
"""Rows of the given hashes (absent ones are simply missing)."""

MAX_BATCH = 5000
"""Most hashes in one query."""
MAX_ABSENT = 100_000
"""Most hashes remembered as absent: past it the memory is cleared rather than grown."""
IDLE_SECONDS = 3600.0
"""A token unused this long is forgotten (looked up again if it comes back), so the refresh stays small."""


@dataclass
class _Known:
    token: StoredToken
    used: float


class TokenCache:
    def __init__(
        self, fetch: Fetch, *, negative_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._negative_seconds = negative_seconds
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._absent: dict[str, float] = {}
        self._pending: dict[str, asyncio.Future[StoredToken | None]] = {}
        self._lookups: asyncio.Task[None] | None = None

    async def lookup(self, digest: str) -> StoredToken | None:
        """The stored token with this hash, revoked and expired ones included (the caller tells them apart)."""
        now = self._clock()
        known = self._known.get(digest)
        if known is not None:
            known.used = now
            return known.token
        absent_until = self._absent.get(digest)
        if absent_until is not None and absent_until > now:
            return None
        future = self._pending.get(digest)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[digest] = future
            if self._lookups is None or self._lookups.done():
                self._lookups = asyncio.create_task(self._look_up_pending(), name="token-lookups")
        # Shielded: a request cancelled while waiting must not cancel the answer others wait for.
        return await asyncio.shield(future)

    async def _look_up_pending(self) -> None:
        while self._pending:
            digests = list(self._pending)[:MAX_BATCH]
            batch = {digest: self._pending.pop(digest) for digest in digests}
            try:
                rows = await self._fetch(digests)
            except Exception as error:  # noqa: BLE001  # each waiting request gets it (a 503 if the database is down)
                for future in batch.values():
                    if not future.done():
                        future.set_exception(error)
                        future.exception()  # retrieved here too: a waiter may have gone (cancelled)
                continue
            found = {row.hash: row for row in rows}
            now = self._clock()
            for digest, future in batch.items():
                row = found.get(digest)
                if row is None:
                    self._remember_absent(digest, now)
                else:
                    self._known[digest] = _Known(row, now)
                if not future.done():
                    future.set_result(row)

    def _remember_absent(self, digest: str, now: float) -> None:
        if len(self._absent) >= MAX_ABSENT:
            self._absent.clear()
        self._absent[digest] = now + self._negative_seconds

    async def refresh(self) -> int:
        """Re-read every known token (revocations, rotations, deletions); forget idle ones. Returns how many."""
        now = self._clock()
        for digest in [d for d, known in self._known.items() if now - known.used > IDLE_SECONDS]:
            del self._known[digest]
        self._absent = {digest: until for digest, until in self._absent.items() if until > now}
        digests = list(self._known)
        rows: list[StoredToken] = []
        for start in range(0, len(digests), MAX_BATCH):
            rows += await self._fetch(digests[start : start + MAX_BATCH])
        found = {row.hash: row for row in rows}
        for digest in digests:
            known = self._known.get(digest)
            if known is None:
                continue
            row = found.get(digest)
            if row is None:  # deleted from the store: as good as revoked
                del self._known[digest]
            else:
                known.token = row
        return len(found)

    async def run_refresh(self, every_seconds: float) -> None:
        """The background job: refresh forever. A failed refresh keeps the last view (logged) and retries."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.refresh()
            except Exception:  # the database may be down for a while; the next round retries
                log.warning("token refresh failed; keeping the last view", exc_info=True)
