"""What the ledger handler needs from storage: PostgreSQL in adapters/store.py, in memory in the unit tests."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol
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


class LedgerStore(Protocol):
    async def upsert_skus(self, skus: Sequence[SkuRegistered]) -> None:
        """Keep each SKU's latest registration (by occurred_at)."""

    async def record(
        self,
        movements: Sequence[Movement],
        counts: Sequence[CountLine],
        settled_orders: Sequence[tuple[str, str, bool, bool]],
    ) -> TouchedPositions:
        """Store a batch's movements, counts and order outcomes (distributor, order, delivered, cancelled);
        returns the positions they changed."""

    async def lock_for_evaluation(self) -> None:
        """Shared with other consumers, exclusive against the re-evaluation job."""

    async def lock_for_reevaluation(self) -> None: ...

    async def next_position_keys(self, after: Key, limit: int) -> list[Key]:
        """Keys of stored positions after `after`, in key order."""

    async def catalogue(self, sku_ids: Sequence[str]) -> dict[str, Sku]: ...

    async def positions(self, keys: Sequence[Key]) -> list[Position]:
        """Book stock now, for the keys that have any movement or count."""

    async def demand(self, keys: Sequence[Key], window: timedelta, as_of: datetime) -> dict[Key, int]:
        """Units sold (active orders and deliveries) in (as_of - window, as_of]."""

    async def count_books(self, touched: TouchedPositions) -> list[CountBook]:
        """Book-before-count figures of every count at or after each touched key's earliest change."""

    async def stored_positions(self, keys: Sequence[Key]) -> dict[Key, StoredPosition]: ...

    async def stored_alerts(self, keys: Sequence[Key]) -> dict[tuple[str, str, str], StoredAlert]: ...

    async def stored_variances(self, count_event_ids: Sequence[UUID]) -> dict[tuple[UUID, str], StoredVariance]: ...

    async def save_positions(self, rows: Sequence[StoredPosition]) -> None: ...

    async def save_alerts(self, rows: Sequence[StoredAlert]) -> None: ...

    async def save_variances(self, rows: Sequence[StoredVariance]) -> None: ...

    async def append_to_outbox(self, events: Sequence[Envelope]) -> None:
        """Queue derived events in the same transaction."""
