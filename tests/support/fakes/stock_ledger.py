"""stock-ledger's LedgerStore in memory, with the ledger rule of adapters/ledger.py's SQL: book stock = the latest
count (by counted_at, then event id) + every active movement after it; an order's own movement is inactive once
the order is delivered or cancelled."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import SkuRegistered
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


@dataclass
class FakeLedgerStore:
    skus: dict[str, tuple[Sku, datetime]] = field(default_factory=dict)
    movements: dict[tuple[UUID, int], Movement] = field(default_factory=dict)
    active: dict[tuple[UUID, int], bool] = field(default_factory=dict)
    counts: dict[tuple[UUID, str], CountLine] = field(default_factory=dict)
    orders: dict[tuple[str, str], tuple[bool, bool]] = field(default_factory=dict)
    stored_position_rows: dict[Key, StoredPosition] = field(default_factory=dict)
    stored_alert_rows: dict[tuple[str, str, str], StoredAlert] = field(default_factory=dict)
    stored_variance_rows: dict[tuple[UUID, str], StoredVariance] = field(default_factory=dict)
    outbox: list[Envelope] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)

    async def upsert_skus(self, skus: Sequence[SkuRegistered]) -> None:
        for s in skus:
            p = s.payload
            known = self.skus.get(p.sku_id)
            if known is None or known[1] <= s.occurred_at:
                sku = Sku(p.sku_id, p.list_price, p.max_cover_days, p.min_cover_days, p.overstock_min_units)
                self.skus[p.sku_id] = (sku, s.occurred_at)

    async def record(
        self,
        movements: Sequence[Movement],
        counts: Sequence[CountLine],
        settled_orders: Sequence[tuple[str, str, bool, bool]],
    ) -> TouchedPositions:
        touched = TouchedPositions()
        for m in movements:
            key = (m.event_id, m.line_no)
            if key not in self.movements:
                self.movements[key], self.active[key] = m, True
            touched.touch((m.distributor_id, m.sku_id), m.occurred_at, m.event_id)
        for c in counts:
            self.counts.setdefault((c.event_id, c.sku_id), c)
            touched.touch((c.distributor_id, c.sku_id), c.counted_at, c.event_id)
        for distributor_id, order_id, delivered, cancelled in settled_orders:
            was = self.orders.get((distributor_id, order_id), (False, False))
            self.orders[(distributor_id, order_id)] = (was[0] or delivered, was[1] or cancelled)
        acted_on = {(m.distributor_id, m.order_id) for m in movements if m.order_id} | {s[:2] for s in settled_orders}
        for key, m in self.movements.items():
            if m.kind != "order" or (m.distributor_id, m.order_id) not in acted_on:
                continue
            should_be = not any(self.orders.get((m.distributor_id, m.order_id or ""), (False, False)))
            if self.active[key] != should_be:
                self.active[key] = should_be
                touched.touch((m.distributor_id, m.sku_id), m.occurred_at)
        return touched

    async def lock_for_evaluation(self) -> None:
        self.locks.append("evaluation")

    async def lock_for_reevaluation(self) -> None:
        self.locks.append("reevaluation")

    async def next_position_keys(self, after: Key, limit: int) -> list[Key]:
        return sorted(k for k in self.stored_position_rows if k > after)[:limit]

    async def catalogue(self, sku_ids: Sequence[str]) -> dict[str, Sku]:
        return {s: self.skus[s][0] for s in sku_ids if s in self.skus}

    def _moves(self, key: Key) -> list[tuple[Movement, bool]]:
        return [(m, self.active[k]) for k, m in self.movements.items() if (m.distributor_id, m.sku_id) == key]

    def _counts(self, key: Key) -> list[CountLine]:
        return sorted(
            (c for c in self.counts.values() if (c.distributor_id, c.sku_id) == key),
            key=lambda c: (c.counted_at, c.event_id),
        )

    async def positions(self, keys: Sequence[Key]) -> list[Position]:
        found = []
        for key in keys:
            counts, moves = self._counts(key), self._moves(key)
            last = counts[-1] if counts else None
            after = sum(m.delta for m, active in moves if active and (last is None or m.occurred_at > last.counted_at))
            times = [m.occurred_at for m, _ in moves] + ([last.counted_at] if last else [])
            if times:
                found.append(Position(*key, (last.quantity if last else 0) + after, max(times)))
        return found

    async def demand(self, keys: Sequence[Key], window: timedelta, as_of: datetime) -> dict[Key, int]:
        sold: dict[Key, int] = {}
        for key in keys:
            in_window = [
                m.delta
                for m, active in self._moves(key)
                if active and m.kind in ("order", "delivery") and as_of - window < m.occurred_at <= as_of
            ]
            if in_window:
                sold[key] = -sum(in_window)
        return sold

    async def count_books(self, touched: TouchedPositions) -> list[CountBook]:
        books = []
        for key, since in touched.since.items():
            counts = self._counts(key)
            for i, c in enumerate(counts):
                if c.purpose != "count" or c.counted_at < since:
                    continue
                prev = counts[i - 1] if i else None
                moved = sum(
                    m.delta
                    for m, active in self._moves(key)
                    if active and m.occurred_at <= c.counted_at and (prev is None or m.occurred_at > prev.counted_at)
                )
                book = (prev.quantity if prev else 0) + moved
                books.append(
                    CountBook(c.event_id, c.sku_id, c.count_id, c.distributor_id, c.counted_at, book, c.quantity)
                )
        return books

    async def stored_positions(self, keys: Sequence[Key]) -> dict[Key, StoredPosition]:
        return {k: self.stored_position_rows[k] for k in keys if k in self.stored_position_rows}

    async def stored_alerts(self, keys: Sequence[Key]) -> dict[tuple[str, str, str], StoredAlert]:
        wanted = set(keys)
        return {k: a for k, a in self.stored_alert_rows.items() if k[:2] in wanted}

    async def stored_variances(self, count_event_ids: Sequence[UUID]) -> dict[tuple[UUID, str], StoredVariance]:
        wanted = set(count_event_ids)
        return {k: v for k, v in self.stored_variance_rows.items() if k[0] in wanted}

    async def save_positions(self, rows: Sequence[StoredPosition]) -> None:
        self.stored_position_rows.update({(p.distributor_id, p.sku_id): p for p in rows})

    async def save_alerts(self, rows: Sequence[StoredAlert]) -> None:
        self.stored_alert_rows.update({(a.distributor_id, a.sku_id, a.kind): a for a in rows})

    async def save_variances(self, rows: Sequence[StoredVariance]) -> None:
        self.stored_variance_rows.update({(v.count_event_id, v.sku_id): v for v in rows})

    async def append_to_outbox(self, events: Sequence[Envelope]) -> None:
        self.outbox.extend(events)
