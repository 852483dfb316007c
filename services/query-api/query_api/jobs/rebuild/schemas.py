"""The schemas of a rebuild: `<schema>_rebuild` built beside the live `<schema>`, swapped in by renaming both in
one transaction, the old one kept as `<schema>_previous` until the next swap (or `--drop-previous`)."""

import logging
from dataclasses import dataclass

import asyncpg

from query_api.notify.carry import carry_statements
from query_api.schema_swap import LOCK_EXCLUSIVE, swap_lock_name

log = logging.getLogger(__name__)

_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)"
_STORED_OFFSETS = "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = $1"


def _quoted(name: str) -> str:
    """A schema name as an SQL identifier (names cannot be bound as parameters)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Schemas:
    live: str

    @property
    def rebuild(self) -> str:
        return f"{self.live}_rebuild"

    @property
    def previous(self) -> str:
        return f"{self.live}_previous"

    async def exists(self, conn: asyncpg.Connection, schema: str) -> bool:
        return bool(await conn.fetchval(_EXISTS, schema))

    async def drop(self, conn: asyncpg.Connection, schema: str) -> None:
        statement = _drop(schema)
        await conn.execute(statement)

    async def stored_offsets(self, conn: asyncpg.Connection, group_id: str) -> dict[tuple[str, int], int]:
        """The rebuild schema's next offsets (empty if it has none yet)."""
        if not await self.exists(conn, self.rebuild):
            return {}
        statement = _STORED_OFFSETS.replace("consumer_offsets", _quoted(self.rebuild) + ".consumer_offsets")
        rows = await conn.fetch(statement, group_id)
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def swap(self, conn: asyncpg.Connection) -> None:
        """The rebuilt schema becomes the live one, atomically. The exclusive lock waits for the live consumer's
        batch in flight (each takes it shared) and holds the next until the renames are committed."""
        drop_previous = _drop(self.previous)
        retire_live = _rename(self.live, self.previous)
        promote_rebuild = _rename(self.rebuild, self.live)
        drop_finished = "DROP TABLE IF EXISTS " + _quoted(self.rebuild) + ".bulk_load_finished"
        async with conn.transaction():
            await conn.execute(LOCK_EXCLUSIVE, swap_lock_name(self.live))
            await conn.execute(drop_previous)
            if await self.exists(conn, self.live):  # not before query-api first started
                for statement in carry_statements(self.live, self.rebuild):  # subscriptions, deliveries (notify)
                    await conn.execute(statement)
                await conn.execute(retire_live)
            # The bulk loads' record of what finished (loading.py): needed until now, never by the live schema.
            await conn.execute(drop_finished)
            await conn.execute(promote_rebuild)
        log.info("rebuilt schema swapped in", extra={"schema": self.live, "previous": self.previous})


def _drop(schema: str) -> str:
    return "DROP SCHEMA IF EXISTS " + _quoted(schema) + " CASCADE"


def _rename(schema: str, to: str) -> str:
    return "ALTER SCHEMA " + _quoted(schema) + " RENAME TO " + _quoted(to)
