"""The ledger handler's storage in PostgreSQL (handlers/ports.LedgerStore), on the consumer's connection."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

import asyncpg

from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import SkuRegistered
from sellthrough_runtime.outbox import append_to_outbox
from stock_ledger.adapters import ledger
from stock_ledger.domain.movements import CountLine, Movement
from stock_ledger.domain.positions import (
    CountBook,
    Key,
    Position,
    Sku,
    StoredAlert,
    StoredPosition,
    StoredVariance,
    TouchedPositions,
)

_UPSERT_SKU = """
INSERT INTO skus (sku_id, list_price, max_cover_days, min_cover_days, overstock_min_units, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (sku_id) DO UPDATE SET list_price = excluded.list_price, max_cover_days = excluded.max_cover_days,
    min_cover_days = excluded.min_cover_days, overstock_min_units = excluded.overstock_min_units,
    occurred_at = excluded.occurred_at
WHERE skus.occurred_at <= excluded.occurred_at
"""
_DEMAND = """
SELECT m.distributor_id, m.sku_id, -sum(m.delta) AS sold
FROM movements m JOIN unnest($1::text[], $2::text[]) AS k(distributor_id, sku_id) USING (distributor_id, sku_id)
WHERE m.kind IN ('order', 'delivery') AND m.active AND m.occurred_at > $4::timestamptz - $3::interval
  AND m.occurred_at <= $4::timestamptz
GROUP BY m.distributor_id, m.sku_id
"""
_NEXT_KEYS = """
SELECT distributor_id, sku_id FROM positions
WHERE (distributor_id, sku_id) > ($1, $2)
ORDER BY distributor_id, sku_id
LIMIT $3
"""

LOCK_FOR_EVALUATION = "SELECT pg_advisory_xact_lock_shared(hashtext('stock-ledger:alerts'))"
"""Taken by the ledger consumer (in a statement of its own, so the reads after it see what committed before) before
it evaluates positions and alerts. Shared: consumer transactions never wait for each other."""
LOCK_FOR_REEVALUATION = "SELECT pg_advisory_xact_lock(hashtext('stock-ledger:alerts'))"
"""Taken by the re-evaluation as days pass (handlers/reevaluation.py) before it evaluates a chunk of positions.
Exclusive: otherwise it and a consumer could read the same alert state and both emit its change."""


def _split(keys: Sequence[Key]) -> tuple[list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys]


class PgLedgerStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def upsert_skus(self, skus: Sequence[SkuRegistered]) -> None:
        if skus:
            await self._conn.executemany(
                _UPSERT_SKU,
                [
                    (
                        s.payload.sku_id,
                        s.payload.list_price,
                        s.payload.max_cover_days,
                        s.payload.min_cover_days,
                        s.payload.overstock_min_units,
                        s.occurred_at,
                    )
                    for s in skus
                ],
            )

    async def record(
        self,
        movements: Sequence[Movement],
        counts: Sequence[CountLine],
        settled_orders: Sequence[tuple[str, str, bool, bool]],
    ) -> TouchedPositions:
        return await ledger.record(self._conn, movements, counts, settled_orders)

    async def lock_for_evaluation(self) -> None:
        await self._conn.execute(LOCK_FOR_EVALUATION)

    async def lock_for_reevaluation(self) -> None:
        await self._conn.execute(LOCK_FOR_REEVALUATION)

    async def next_position_keys(self, after: Key, limit: int) -> list[Key]:
        return [(r["distributor_id"], r["sku_id"]) for r in await self._conn.fetch(_NEXT_KEYS, *after, limit)]

    async def catalogue(self, sku_ids: Sequence[str]) -> dict[str, Sku]:
        rows = await self._conn.fetch(
            "SELECT sku_id, list_price, max_cover_days, min_cover_days, overstock_min_units FROM skus "
            "WHERE sku_id = ANY($1::text[])",
            list(sku_ids),
        )
        return {
            r["sku_id"]: Sku(
                r["sku_id"],
                Decimal(r["list_price"]),
                r["max_cover_days"],
                r["min_cover_days"],
                r["overstock_min_units"],
            )
            for r in rows
        }

    async def positions(self, keys: Sequence[Key]) -> list[Position]:
        return await ledger.positions(self._conn, keys)

    async def demand(self, keys: Sequence[Key], window: timedelta, as_of: datetime) -> dict[Key, int]:
        rows = await self._conn.fetch(_DEMAND, *_split(keys), window, as_of)
        return {(r["distributor_id"], r["sku_id"]): int(r["sold"]) for r in rows}

    async def count_books(self, touched: TouchedPositions) -> list[CountBook]:
        return await ledger.count_books(self._conn, touched)

    async def stored_positions(self, keys: Sequence[Key]) -> dict[Key, StoredPosition]:
        rows = await self._conn.fetch(
            "SELECT p.* FROM positions p JOIN unnest($1::text[], $2::text[]) AS k(distributor_id, sku_id) "
            "USING (distributor_id, sku_id)",
            *_split(keys),
        )
        return {
            (r["distributor_id"], r["sku_id"]): StoredPosition(
                r["distributor_id"], r["sku_id"], r["on_hand"], r["as_of"], r["version"]
            )
            for r in rows
        }

    async def stored_alerts(self, keys: Sequence[Key]) -> dict[tuple[str, str, str], StoredAlert]:
        rows = await self._conn.fetch(
            "SELECT a.* FROM alerts a JOIN unnest($1::text[], $2::text[]) AS k(distributor_id, sku_id) "
            "USING (distributor_id, sku_id)",
            *_split(keys),
        )
        return {
            (r["distributor_id"], r["sku_id"], r["kind"]): StoredAlert(
                r["distributor_id"], r["sku_id"], r["kind"], r["active"], r["version"]
            )
            for r in rows
        }

    async def stored_variances(self, count_event_ids: Sequence[UUID]) -> dict[tuple[UUID, str], StoredVariance]:
        rows = await self._conn.fetch(
            "SELECT * FROM variances WHERE count_event_id = ANY($1::uuid[])", list(count_event_ids)
        )
        return {
            (r["count_event_id"], r["sku_id"]): StoredVariance(
                r["count_event_id"], r["sku_id"], r["book"], r["counted"], r["revision"]
            )
            for r in rows
        }

    async def save_positions(self, rows: Sequence[StoredPosition]) -> None:
        if rows:
            await self._conn.executemany(
                "INSERT INTO positions (distributor_id, sku_id, on_hand, as_of, version) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (distributor_id, sku_id) DO UPDATE "
                "SET on_hand = excluded.on_hand, as_of = excluded.as_of, version = excluded.version",
                [(p.distributor_id, p.sku_id, p.on_hand, p.as_of, p.version) for p in rows],
            )

    async def save_alerts(self, rows: Sequence[StoredAlert]) -> None:
        if rows:
            await self._conn.executemany(
                "INSERT INTO alerts (distributor_id, sku_id, kind, active, version) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (distributor_id, sku_id, kind) DO UPDATE SET active = excluded.active, "
                "version = excluded.version",
                [(a.distributor_id, a.sku_id, a.kind, a.active, a.version) for a in rows],
            )

    async def save_variances(self, rows: Sequence[StoredVariance]) -> None:
        if rows:
            await self._conn.executemany(
                "INSERT INTO variances (count_event_id, sku_id, book, counted, revision) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (count_event_id, sku_id) DO UPDATE SET book = excluded.book, "
                "counted = excluded.counted, revision = excluded.revision",
                [(v.count_event_id, v.sku_id, v.book, v.counted, v.revision) for v in rows],
            )

    async def append_to_outbox(self, events: Sequence[Envelope]) -> None:
        if events:
            await append_to_outbox(self._conn, list(events))
