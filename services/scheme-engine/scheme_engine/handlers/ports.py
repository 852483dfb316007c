"""What the evaluation handler needs from storage: PostgreSQL in adapters/postgres.py, in memory in unit tests."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from scheme_engine.domain import OrderContext, SchemeBenefit, SchemeEvent, SchemesState
from scheme_engine.domain.claims import StoredClaim
from scheme_engine.domain.grants import Applied, Grant
from scheme_engine.domain.masters import MasterChanges
from scheme_engine.domain.returns import RetailerReturn
from sellthrough_contracts import Envelope
from sellthrough_contracts.schemes import ClaimSubmission, SchemeClaimSubmitted
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, ReturnRecorded


class SchemeStore(Protocol):
    async def lock(self) -> None:
        """One batch at a time across instances, to the end of the transaction."""

    async def upsert_masters(self, events: Sequence[Envelope]) -> MasterChanges:
        """Keep the latest of each master these events carry; returns those that changed."""

    async def store_scheme_events(self, events: Sequence[SchemeEvent]) -> None: ...

    async def store_orders(self, orders: Sequence[OrderCaptured]) -> None: ...

    async def store_cancellations(self, cancels: Sequence[OrderCancelled]) -> list[UUID]:
        """Returns the event ids of the known orders they cancel."""

    async def store_returns(self, retailer_returns: Sequence[ReturnRecorded]) -> set[str]:
        """Returns the outlets whose retailer returns changed."""

    async def load_schemes(self) -> SchemesState: ...

    async def orders_between(self, start: datetime, end: datetime) -> list[UUID]: ...

    async def orders_of_masters(self, changes: MasterChanges, start: datetime, end: datetime) -> list[UUID]: ...

    async def schemes_granted_at(self, outlet_ids: Iterable[str]) -> set[str]: ...

    async def order_contexts(self, event_ids: Iterable[UUID]) -> list[OrderContext]:
        """The orders that are not cancelled, with the masters known now, in event-time order."""

    async def replace_earned(self, order_event_ids: Sequence[UUID], benefits: Sequence[SchemeBenefit]) -> set[str]:
        """Returns every scheme whose earned set may have changed."""

    async def earned_of(self, scheme_id: str) -> list[SchemeBenefit]: ...

    async def returns_at(self, outlet_ids: Iterable[str]) -> list[RetailerReturn]: ...

    async def applied_of(self, scheme_id: str) -> dict[UUID, Applied]:
        """The grants last emitted for the scheme, by order event id."""

    async def save_applied(self, changed: Sequence[tuple[Grant, int]]) -> None: ...

    async def distributor_orders(self, distributor_id: str) -> list[OrderContext]:
        """Every order of the distributor that is not cancelled, as order_contexts gives it."""

    async def latest_submission(self, distributor_id: str, claim_id: str) -> tuple[int, dict[str, object]] | None:
        """The claim's latest revision (in the order received) and its payload as JSON."""

    async def add_submission(self, claim: SchemeClaimSubmitted, revision: int) -> None:
        """Keep it as this revision (once per event id); the claim's current one if the latest by event time."""

    async def claims_of(self, scheme_ids: Iterable[str]) -> list[StoredClaim]: ...

    async def submissions(self, distributor_id: str, claim_id: str, current_revision: int) -> list[ClaimSubmission]:
        """Every revision of the claim, in revision order."""

    async def save_assessment(
        self, distributor_id: str, claim_id: str, figures: dict[str, object], revision: int
    ) -> None: ...

    async def append_to_outbox(self, events: Sequence[Envelope]) -> None: ...
