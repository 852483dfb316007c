"""The evaluation handler's storage in PostgreSQL (handlers/ports.SchemeStore), on the consumer's connection."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from scheme_engine.adapters import claims, grants, masters, returns, store
from scheme_engine.domain import OrderContext, SchemeBenefit, SchemeEvent, SchemesState
from scheme_engine.domain.claims import StoredClaim
from scheme_engine.domain.grants import Applied, Grant
from scheme_engine.domain.masters import MasterChanges
from scheme_engine.domain.returns import RetailerReturn
from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import ClaimSubmission, SchemeClaimSubmitted
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, ReturnRecorded
from sellthrough_runtime.outbox import append_to_outbox


class PgSchemeStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock(self) -> None:
        # A batch reads every scheme and re-allocates whole schemes, so two instances applying different
        # partitions at once could each miss the other's orders or scheme events. The lock is held to the end
        # of the consumer's transaction; every read after it sees what the previous holder committed.
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('scheme-engine.evaluation'))")

    async def upsert_masters(self, events: Sequence[Envelope]) -> MasterChanges:
        return await masters.upsert_masters(self._conn, events)

    async def store_scheme_events(self, events: Sequence[SchemeEvent]) -> None:
        await store.store_scheme_events(self._conn, events)

    async def store_orders(self, orders: Sequence[OrderCaptured]) -> None:
        await store.store_orders(self._conn, orders)

    async def store_cancellations(self, cancels: Sequence[OrderCancelled]) -> list[UUID]:
        return await store.store_cancellations(self._conn, cancels)

    async def store_returns(self, retailer_returns: Sequence[ReturnRecorded]) -> set[str]:
        return await returns.store_returns(self._conn, retailer_returns)

    async def load_schemes(self) -> SchemesState:
        return await store.load_schemes(self._conn)

    async def orders_between(self, start: datetime, end: datetime) -> list[UUID]:
        return await store.orders_between(self._conn, start, end)

    async def orders_of_masters(self, changes: MasterChanges, start: datetime, end: datetime) -> list[UUID]:
        return await store.orders_of_masters(self._conn, changes, start, end)

    async def schemes_granted_at(self, outlet_ids: Iterable[str]) -> set[str]:
        return await returns.schemes_granted_at(self._conn, outlet_ids)

    async def order_contexts(self, event_ids: Iterable[UUID]) -> list[OrderContext]:
        return await store.order_contexts(self._conn, event_ids)

    async def replace_earned(self, order_event_ids: Sequence[UUID], benefits: Sequence[SchemeBenefit]) -> set[str]:
        return await store.replace_earned(self._conn, order_event_ids, benefits)

    async def earned_of(self, scheme_id: str) -> list[SchemeBenefit]:
        return await store.earned_of(self._conn, scheme_id)

    async def returns_at(self, outlet_ids: Iterable[str]) -> list[RetailerReturn]:
        return await returns.returns_at(self._conn, outlet_ids)

    async def applied_of(self, scheme_id: str) -> dict[UUID, Applied]:
        return await grants.applied_of(self._conn, scheme_id)

    async def save_applied(self, changed: Sequence[tuple[Grant, int]]) -> None:
        await grants.save_applied(self._conn, changed)

    async def distributor_orders(self, distributor_id: str) -> list[OrderContext]:
        return await store.distributor_orders(self._conn, distributor_id)

    async def latest_submission(self, distributor_id: str, claim_id: str) -> tuple[int, dict[str, object]] | None:
        return await claims.latest_submission(self._conn, distributor_id, claim_id)

    async def add_submission(self, claim: SchemeClaimSubmitted, revision: int) -> None:
        await claims.add_submission(self._conn, claim, revision)

    async def claims_of(self, scheme_ids: Iterable[str]) -> list[StoredClaim]:
        return await claims.claims_of(self._conn, scheme_ids)

    async def submissions(self, distributor_id: str, claim_id: str, current_revision: int) -> list[ClaimSubmission]:
        return await claims.submissions(self._conn, distributor_id, claim_id, current_revision)

    async def save_assessment(
        self, distributor_id: str, claim_id: str, figures: dict[str, object], revision: int
    ) -> None:
        await claims.save_assessment(self._conn, distributor_id, claim_id, figures, revision)

    async def append_to_outbox(self, events: Sequence[Envelope]) -> None:
        await append_to_outbox(self._conn, events)
