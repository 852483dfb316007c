"""Applies a batch of trade and reference events to the ledger and emits what changed.

One call = one Postgres transaction (the consumer's): movements, counts, emitted-state bookkeeping and the
outbox rows of derived events commit together with the consumer's offsets.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.reference import SkuRegistered
from sellthrough_contracts.trade import OrderCancelled, OrderDelivered
from sellthrough_runtime.applier import Handler
from sellthrough_runtime.outbox import append_to_outbox
from stock_ledger import derived, ledger
from stock_ledger.alerts import Norms, evaluate
from stock_ledger.ledger import Key
from stock_ledger.movements import SETTLING, STOCK_EVENT_CLASSES, count_lines_of, movements_of
from stock_ledger.settings import StockLedgerSettings

LEDGER_TYPES = type_names((*STOCK_EVENT_CLASSES, SkuRegistered))
"""What the ledger consumer applies: the stock events, and SKUs for their prices and alert norms."""

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

LOCK_FOR_EVALUATION = "SELECT pg_advisory_xact_lock_shared(hashtext('stock-ledger:alerts'))"
"""Taken by the ledger consumer (in a statement of its own, so the reads after it see what committed before) before
it evaluates positions and alerts. Shared: consumer transactions never wait for each other."""
LOCK_FOR_REEVALUATION = "SELECT pg_advisory_xact_lock(hashtext('stock-ledger:alerts'))"
"""Taken by the re-evaluation as days pass (reevaluation.py) before it evaluates a chunk of positions. Exclusive:
otherwise it and a consumer could read the same alert state and both emit its change."""


def ledger_handler(settings: StockLedgerSettings) -> Handler:
    window = timedelta(days=settings.demand_window_days)

    async def apply(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        skus = [e for e in events if type(e) is SkuRegistered]
        if skus:
            await conn.executemany(
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
        settled = [
            (e.payload.distributor_id, e.payload.order_id, type(e) is OrderDelivered, type(e) is OrderCancelled)
            for e in events
            if isinstance(e, SETTLING)
        ]
        touched = await ledger.record(
            conn,
            [m for e in events for m in movements_of(e)],
            [c for e in events for c in count_lines_of(e)],
            settled,
        )
        if not touched.since:
            return
        keys = sorted(touched.since)
        await conn.execute(LOCK_FOR_EVALUATION)
        catalogue = await catalogue_of(conn, sorted({sku for _, sku in keys}))
        emitted = await emit_positions_and_alerts(conn, keys, touched, catalogue, settings, window, datetime.now(UTC))
        emitted += await _emit_variances(conn, touched, catalogue)
        await append_to_outbox(conn, emitted)

    return apply


async def catalogue_of(conn: asyncpg.Connection, sku_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT sku_id, list_price, max_cover_days, min_cover_days, overstock_min_units FROM skus "
        "WHERE sku_id = ANY($1::text[])",
        sku_ids,
    )
    return {r["sku_id"]: r for r in rows}


def norms_of(sku: asyncpg.Record | None, settings: StockLedgerSettings) -> Norms:
    """The SKU's own alert norms where it sets them, the settings' otherwise (also for a SKU not yet known)."""

    def own(name: str) -> Any:
        return sku[name] if sku is not None else None

    return Norms(
        min_cover_days=settings.min_cover_days if own("min_cover_days") is None else own("min_cover_days"),
        max_cover_days=settings.max_cover_days if own("max_cover_days") is None else own("max_cover_days"),
        overstock_min_units=(
            settings.overstock_min_units if own("overstock_min_units") is None else own("overstock_min_units")
        ),
    )


def _price(catalogue: dict[str, asyncpg.Record], sku_id: str) -> Decimal:
    row = catalogue.get(sku_id)
    return Decimal(row["list_price"]) if row else Decimal(0)


async def emit_positions_and_alerts(
    conn: asyncpg.Connection,
    keys: list[Key],
    touched: ledger.TouchedPositions,
    catalogue: dict[str, asyncpg.Record],
    settings: StockLedgerSettings,
    window: timedelta,
    as_of: datetime,
) -> list[Envelope]:
    """Position and alert events for what changed at these keys, with demand averaged over the window up to
    `as_of`; the stored positions and alert states are brought up to date."""
    current = await ledger.positions(conn, keys)
    stored = {
        (r["distributor_id"], r["sku_id"]): r
        for r in await conn.fetch(
            "SELECT p.* FROM positions p JOIN unnest($1::text[], $2::text[]) AS k(distributor_id, sku_id) "
            "USING (distributor_id, sku_id)",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
    }
    demand = {
        (r["distributor_id"], r["sku_id"]): int(r["sold"])
        for r in await conn.fetch(_DEMAND, [k[0] for k in keys], [k[1] for k in keys], window, as_of)
    }
    alerts = {
        (r["distributor_id"], r["sku_id"], r["kind"]): r
        for r in await conn.fetch(
            "SELECT a.* FROM alerts a JOIN unnest($1::text[], $2::text[]) AS k(distributor_id, sku_id) "
            "USING (distributor_id, sku_id)",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
    }
    events: list[Envelope] = []
    position_rows, alert_rows = [], []
    for position in current:
        key = (position.distributor_id, position.sku_id)
        cause = touched.cause.get(key)
        previous = stored.get(key)
        if previous is None or previous["on_hand"] != position.on_hand or previous["as_of"] != position.as_of:
            version = (previous["version"] if previous else 0) + 1
            position_rows.append((*key, position.on_hand, position.as_of, version))
            events.append(derived.position_changed(position, _price(catalogue, position.sku_id), version, cause))
        norms = norms_of(catalogue.get(position.sku_id), settings)
        for kind, state in evaluate(position.on_hand, demand.get(key, 0), window.days, norms).items():
            was = alerts.get((*key, kind))
            if (was["active"] if was else False) != state.active:
                version = (was["version"] if was else 0) + 1
                alert_rows.append((*key, kind, state.active, version))
                events.append(derived.alert_changed(*key, state, version, cause))
    if position_rows:
        await conn.executemany(
            "INSERT INTO positions (distributor_id, sku_id, on_hand, as_of, version) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (distributor_id, sku_id) DO UPDATE SET on_hand = excluded.on_hand, as_of = excluded.as_of, "
            "version = excluded.version",
            position_rows,
        )
    if alert_rows:
        await conn.executemany(
            "INSERT INTO alerts (distributor_id, sku_id, kind, active, version) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (distributor_id, sku_id, kind) DO UPDATE SET active = excluded.active, "
            "version = excluded.version",
            alert_rows,
        )
    return events


async def _emit_variances(
    conn: asyncpg.Connection, touched: ledger.TouchedPositions, catalogue: dict[str, asyncpg.Record]
) -> list[Envelope]:
    books = await ledger.count_books(conn, touched)
    if not books:
        return []
    stored = {
        (r["count_event_id"], r["sku_id"]): r
        for r in await conn.fetch(
            "SELECT * FROM variances WHERE count_event_id = ANY($1::uuid[])", list({b.count_event_id for b in books})
        )
    }
    events: list[Envelope] = []
    rows = []
    for book in books:
        previous = stored.get((book.count_event_id, book.sku_id))
        if previous is not None and previous["book"] == book.book and previous["counted"] == book.counted:
            continue
        revision = (previous["revision"] if previous else 0) + 1
        rows.append((book.count_event_id, book.sku_id, book.book, book.counted, revision))
        cause = touched.cause.get((book.distributor_id, book.sku_id))
        events.append(derived.variance_recorded(book, _price(catalogue, book.sku_id), revision, cause))
    await conn.executemany(
        "INSERT INTO variances (count_event_id, sku_id, book, counted, revision) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (count_event_id, sku_id) DO UPDATE SET book = excluded.book, counted = excluded.counted, "
        "revision = excluded.revision",
        rows,
    )
    return events
