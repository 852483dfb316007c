"""Applies a batch of trade and reference events to the ledger and emits what changed.

One call = one Postgres transaction (the consumer's): movements, counts, emitted-state bookkeeping and the
outbox rows of derived events commit together with the consumer's offsets. The decisions (which position,
alert or variance changed, and its next version) are here; storage is behind ports.LedgerStore.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.reference import SkuRegistered
from sellthrough_runtime.applier import Handler
from stock_ledger.adapters.store import PgLedgerStore
from stock_ledger.domain import events as derived
from stock_ledger.domain.alerts import Norms, evaluate
from stock_ledger.domain.movements import STOCK_EVENT_CLASSES, count_lines_of, movements_of, settled_order
from stock_ledger.domain.positions import (
    Key,
    Sku,
    StoredAlert,
    StoredPosition,
    StoredVariance,
    TouchedPositions,
    norms_of,
    price_of,
)
from stock_ledger.handlers.ports import LedgerStore
from stock_ledger.settings import StockLedgerSettings

LEDGER_TYPES = type_names((*STOCK_EVENT_CLASSES, SkuRegistered))
"""What the ledger consumer applies: the stock events, and SKUs for their prices and alert norms."""


def ledger_handler(settings: StockLedgerSettings) -> Handler:
    async def apply(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        await apply_batch(PgLedgerStore(conn), events, settings, datetime.now(UTC))

    return apply


async def apply_batch(
    store: LedgerStore, events: Sequence[Envelope], settings: StockLedgerSettings, now: datetime
) -> None:
    await store.upsert_skus([e for e in events if type(e) is SkuRegistered])
    settled = [s for e in events if (s := settled_order(e)) is not None]
    touched = await store.record(
        [m for e in events for m in movements_of(e)],
        [c for e in events for c in count_lines_of(e)],
        settled,
    )
    if not touched.since:
        return
    await store.lock_for_evaluation()
    keys = sorted(touched.since)
    catalogue = await store.catalogue(sorted({sku for _, sku in keys}))
    emitted = await evaluate_positions(store, keys, touched, catalogue, settings, now)
    emitted += await _emit_variances(store, touched, catalogue)
    await store.append_to_outbox(emitted)


def default_norms(settings: StockLedgerSettings) -> Norms:
    return Norms(settings.min_cover_days, settings.max_cover_days, settings.overstock_min_units)


async def evaluate_positions(
    store: LedgerStore,
    keys: list[Key],
    touched: TouchedPositions,
    catalogue: Mapping[str, Sku],
    settings: StockLedgerSettings,
    as_of: datetime,
) -> list[Envelope]:
    """Position and alert events for what changed at these keys, with demand averaged over the window up to
    `as_of`; the stored positions and alert states are brought up to date."""
    window = timedelta(days=settings.demand_window_days)
    current = await store.positions(keys)
    stored = await store.stored_positions(keys)
    demand = await store.demand(keys, window, as_of)
    alerts = await store.stored_alerts(keys)
    events: list[Envelope] = []
    position_rows: list[StoredPosition] = []
    alert_rows: list[StoredAlert] = []
    for position in current:
        key = (position.distributor_id, position.sku_id)
        cause = touched.cause.get(key)
        previous = stored.get(key)
        if previous is None or previous.on_hand != position.on_hand or previous.as_of != position.as_of:
            version = (previous.version if previous else 0) + 1
            position_rows.append(StoredPosition(*key, position.on_hand, position.as_of, version))
            events.append(derived.position_changed(position, price_of(catalogue, position.sku_id), version, cause))
        norms = norms_of(catalogue.get(position.sku_id), default_norms(settings))
        for kind, state in evaluate(position.on_hand, demand.get(key, 0), window.days, norms).items():
            was = alerts.get((*key, kind))
            if (was.active if was else False) != state.active:
                version = (was.version if was else 0) + 1
                alert_rows.append(StoredAlert(*key, kind, state.active, version))
                events.append(derived.alert_changed(*key, state, version, cause))
    await store.save_positions(position_rows)
    await store.save_alerts(alert_rows)
    return events


async def _emit_variances(
    store: LedgerStore, touched: TouchedPositions, catalogue: Mapping[str, Sku]
) -> list[Envelope]:
    books = await store.count_books(touched)
    if not books:
        return []
    stored = await store.stored_variances(list({b.count_event_id for b in books}))
    events: list[Envelope] = []
    rows: list[StoredVariance] = []
    for book in books:
        previous = stored.get((book.count_event_id, book.sku_id))
        if previous is not None and previous.book == book.book and previous.counted == book.counted:
            continue
        revision = (previous.revision if previous else 0) + 1
        rows.append(StoredVariance(book.count_event_id, book.sku_id, book.book, book.counted, revision))
        cause = touched.cause.get((book.distributor_id, book.sku_id))
        events.append(derived.variance_recorded(book, price_of(catalogue, book.sku_id), revision, cause))
    await store.save_variances(rows)
    return events
