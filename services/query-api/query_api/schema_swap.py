"""The live side of a projection rebuild's swap (query_api.jobs.rebuild): noticing that the schema named
`query_api` is now another one, and moving the reads and the consumer onto it.

The rebuild renames schemas in one transaction (`query_api` -> `query_api_previous`, `query_api_rebuild` ->
`query_api`). Connections opened before keep prepared statements bound to the old tables by OID, so they would go
on reading and writing the renamed, retired schema: the pool's connections are expired once the swap is seen.
The consumer must not apply a batch fetched from the old schema's offsets into the new one (a gap or a double),
so each batch's transaction takes the swap lock (shared; the swap takes it exclusively) and checks that the
schema is still the one its consumer started on; if not, the batch rolls back and the consumer starts again,
positioned from the offsets stored in the new schema.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from query_api.projections.handler import ProjectionHandler
from sellthrough_contracts import Envelope

log = logging.getLogger(__name__)

SCHEMA_OID = "SELECT oid FROM pg_namespace WHERE nspname = $1"
LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext($1))"
LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtext($1))"


def swap_lock_name(schema: str) -> str:
    """The advisory lock a batch takes shared and the swap exclusively."""
    return f"sellthrough-projection-swap:{schema}"


class ProjectionSchemaSwapped(OSError):
    """A batch met a schema swapped since its consumer started. An OSError so that the applier treats it as a
    database outage (sellthrough_runtime.applier.TRANSIENT_ERRORS): the batch is rolled back and retried, never
    dead-lettered, until the consumer is restarted on the new schema."""


class SchemaWatch:
    """Which schema is named `schema` now (its OID), checked every `every_seconds` and whenever a batch finds it
    changed; on a change the pool's connections are expired and waiting consumers are told."""

    def __init__(self, pool: asyncpg.Pool, schema: str, every_seconds: float = 0.5) -> None:
        self._pool = pool
        self._schema = schema
        self._every = every_seconds
        self.oid: int | None = None
        self._changed = asyncio.Event()
        self._poked = asyncio.Event()

    async def current(self) -> int:
        """The schema's OID now; seeing a new one expires the pool's connections first."""
        oid = int(await self._pool.fetchval(SCHEMA_OID, self._schema))
        if self.oid is not None and oid != self.oid:
            await self._pool.expire_connections()
            log.warning("projection schema swapped: connections renewed", extra={"schema": self._schema})
            self._changed.set()
            self._changed = asyncio.Event()
        self.oid = oid
        return oid

    async def changed_from(self, oid: int) -> None:
        """Returns once the schema is another than `oid`."""
        while self.oid == oid:
            await self._changed.wait()

    def poke(self) -> None:
        """Check now rather than at the next tick (a batch found the schema changed)."""
        self._poked.set()

    async def run(self) -> None:
        while True:
            await self.current()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self._every)
            self._poked.clear()


class SwapGuardedHandler:
    """The projection handler, refusing (as a transient error) a batch whose schema was swapped since `expected`
    was set. A PreparingHandler, as the one it wraps."""

    def __init__(self, inner: ProjectionHandler, watch: SchemaWatch, schema: str) -> None:
        self._inner = inner
        self._watch = watch
        self._schema = schema
        self.expected: int | None = None
        """The schema's OID when this handler's consumer started."""
        if (decode_event := getattr(inner, "decode_event", None)) is not None:
            # Still a DecodingHandler if the one it wraps is (the applier reads records with its decoder).
            self.decode_event: Callable[[bytes], Envelope] = decode_event

    async def _check(self, conn: asyncpg.Connection) -> None:
        # The lock waits out a swap in progress; the next statement's snapshot then sees its renames.
        await conn.execute(LOCK_SHARED, swap_lock_name(self._schema))
        if await conn.fetchval(SCHEMA_OID, self._schema) != self.expected:
            self._watch.poke()
            raise ProjectionSchemaSwapped(f"schema {self._schema} was swapped by a rebuild; consumer restarting")

    def prepare(self, events: Sequence[Envelope]) -> object:
        return self._inner.prepare(events)

    async def write(self, conn: asyncpg.Connection, prepared: Any) -> None:
        await self._check(conn)
        await self._inner.write(conn, prepared)

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[Envelope], /) -> None:
        await self._check(conn)
        await self._inner(conn, events)


def restarting_on_swap(
    watch: SchemaWatch, handler: SwapGuardedHandler, consumer: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """A consumer job that starts again, with a fresh Kafka consumer positioned from the stored offsets, whenever
    the schema is swapped; its failures propagate (to the supervisor) as before."""

    async def run() -> None:
        while True:
            handler.expected = await watch.current()
            consuming: asyncio.Future[None] = asyncio.ensure_future(consumer())
            swapped = asyncio.create_task(watch.changed_from(handler.expected))
            try:
                await asyncio.wait({consuming, swapped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (consuming, swapped):
                    task.cancel()
                await asyncio.gather(consuming, swapped, return_exceptions=True)
            if consuming.done() and not consuming.cancelled():
                consuming.result()  # returned or failed: as the consumer job would have
                return
            log.info("projection consumer restarting on the swapped schema")

    return run
