"""scheme-engine's SchemeStore in memory, keeping what adapters/store.py, masters.py, returns.py, grants.py and
claims.py keep in PostgreSQL."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from scheme_engine.domain import OrderContext, OutletProfile, SchemeBenefit, SchemeEvent, SchemesState
from scheme_engine.domain.claims import StoredClaim
from scheme_engine.domain.grants import Applied, Grant
from scheme_engine.domain.masters import MasterChanges
from scheme_engine.domain.returns import RetailerReturn
from sellthrough_contracts import Envelope
from sellthrough_contracts.reference import DistributorRegistered, GeographyDefined, OutletRegistered, SkuRegistered
from sellthrough_contracts.schemes import ClaimSubmission, SchemeClaimSubmitted
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, ReturnRecorded


@dataclass
class _Master:
    values: tuple[Any, ...]
    occurred_at: datetime


@dataclass
class FakeSchemeStore:
    outlets: dict[str, _Master] = field(default_factory=dict)  # distributor, channel, class
    distributors: dict[str, _Master] = field(default_factory=dict)  # region
    regions: dict[str, _Master] = field(default_factory=dict)  # zone
    skus: dict[str, _Master] = field(default_factory=dict)  # brand
    scheme_events: dict[UUID, SchemeEvent] = field(default_factory=dict)
    orders: dict[UUID, OrderCaptured] = field(default_factory=dict)
    cancelled: set[tuple[str, str]] = field(default_factory=set)
    returns: dict[tuple[str, str], ReturnRecorded] = field(default_factory=dict)
    earned: dict[UUID, list[SchemeBenefit]] = field(default_factory=dict)
    applied: dict[str, dict[UUID, Applied]] = field(default_factory=dict)
    submitted: dict[tuple[str, str], list[tuple[int, SchemeClaimSubmitted]]] = field(default_factory=dict)
    claims: dict[tuple[str, str], StoredClaim] = field(default_factory=dict)
    evaluated: list[set[UUID]] = field(default_factory=list)
    outbox: list[Envelope] = field(default_factory=list)
    locks: int = 0

    async def lock(self) -> None:
        self.locks += 1

    async def upsert_masters(self, events: Sequence[Envelope]) -> MasterChanges:
        changes = MasterChanges()
        for e in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
            if isinstance(e, OutletRegistered):
                p = e.payload
                self._upsert(
                    self.outlets, p.outlet_id, (p.distributor_id, p.channel, p.outlet_class), e, changes.outlet_ids
                )
            elif isinstance(e, DistributorRegistered):
                p2 = e.payload
                self._upsert(self.distributors, p2.distributor_id, (p2.region_id,), e, changes.distributor_ids)
            elif isinstance(e, GeographyDefined) and e.payload.level == "region":
                p3 = e.payload
                self._upsert(self.regions, p3.geo_id, (p3.parent_id,), e, changes.region_ids)
            elif isinstance(e, SkuRegistered):
                self._upsert(self.skus, e.payload.sku_id, (e.payload.brand,), e, changes.sku_ids)
        return changes

    @staticmethod
    def _upsert(table: dict[str, _Master], key: str, values: tuple[Any, ...], e: Envelope, changed: list[str]) -> None:
        known = table.get(key)
        if known is None or known.occurred_at <= e.occurred_at:
            table[key] = _Master(values, e.occurred_at)
            if key not in changed:
                changed.append(key)

    async def store_scheme_events(self, events: Sequence[SchemeEvent]) -> None:
        for e in events:
            self.scheme_events.setdefault(e.event_id, e)

    async def store_orders(self, orders: Sequence[OrderCaptured]) -> None:
        for o in orders:
            self.orders.setdefault(o.event_id, o)

    async def store_cancellations(self, cancels: Sequence[OrderCancelled]) -> list[UUID]:
        keys = {(c.payload.distributor_id, c.payload.order_id) for c in cancels}
        self.cancelled |= keys
        return [i for i, o in self.orders.items() if (o.payload.distributor_id, o.payload.order_id) in keys]

    async def store_returns(self, retailer_returns: Sequence[ReturnRecorded]) -> set[str]:
        changed: set[str] = set()
        for r in sorted(retailer_returns, key=lambda r: (r.occurred_at, r.event_id)):
            key = (r.payload.distributor_id, r.payload.return_id)
            known = self.returns.get(key)
            if known is None or (r.occurred_at, r.event_id) < (known.occurred_at, known.event_id):
                self.returns[key] = r
                changed.add(r.payload.outlet_id or "")
        return changed

    async def load_schemes(self) -> SchemesState:
        return SchemesState.from_events(self.scheme_events[i] for i in sorted(self.scheme_events))

    async def orders_between(self, start: datetime, end: datetime) -> list[UUID]:
        return [i for i, o in self.orders.items() if start <= o.occurred_at < end]

    async def orders_of_masters(self, changes: MasterChanges, start: datetime, end: datetime) -> list[UUID]:
        def concerned(o: OrderCaptured) -> bool:
            p = o.payload
            region = self.distributors.get(p.distributor_id)
            return (
                p.outlet_id in changes.outlet_ids
                or p.distributor_id in changes.distributor_ids
                or (region is not None and region.values[0] in changes.region_ids)
                or any(line.sku_id in changes.sku_ids for line in p.lines)
            )

        return [i for i in await self.orders_between(start, end) if concerned(self.orders[i])]

    async def schemes_granted_at(self, outlet_ids: Iterable[str]) -> set[str]:
        outlets = set(outlet_ids)
        return {s for s, grants in self.applied.items() if any(a.grant.outlet_id in outlets for a in grants.values())}

    async def order_contexts(self, event_ids: Iterable[UUID]) -> list[OrderContext]:
        ids = set(event_ids)
        self.evaluated.append(ids)
        return self._contexts(ids)

    def _contexts(self, ids: set[UUID]) -> list[OrderContext]:
        wanted = sorted((o for i, o in self.orders.items() if i in ids), key=lambda o: (o.occurred_at, o.event_id))
        contexts = []
        for o in wanted:
            p = o.payload
            if (p.distributor_id, p.order_id) in self.cancelled:
                continue
            outlet = self.outlets.get(p.outlet_id)
            distributor = self.distributors.get(p.distributor_id)
            region_id = distributor.values[0] if distributor else None
            region = self.regions.get(region_id) if region_id else None
            profile = OutletProfile(
                region.values[0] if region else None,
                region_id,
                outlet.values[1] if outlet else None,
                outlet.values[2] if outlet else None,
            )
            brands = {s: m.values[0] for s, m in self.skus.items()}
            contexts.append(OrderContext.from_order_captured(o, profile, brands))
        return contexts

    async def replace_earned(self, order_event_ids: Sequence[UUID], benefits: Sequence[SchemeBenefit]) -> set[str]:
        schemes = {b.scheme_id for i in order_event_ids for b in self.earned.pop(i, [])}
        for b in benefits:
            self.earned.setdefault(b.order_event_id, []).append(b)
        return schemes | {b.scheme_id for b in benefits}

    async def earned_of(self, scheme_id: str) -> list[SchemeBenefit]:
        return [b for benefits in self.earned.values() for b in benefits if b.scheme_id == scheme_id]

    async def returns_at(self, outlet_ids: Iterable[str]) -> list[RetailerReturn]:
        outlets = set(outlet_ids)
        found = []
        for r in self.returns.values():
            p = r.payload
            if p.outlet_id not in outlets:
                continue
            units: dict[str, int] = {}
            for line in p.lines:
                units[line.sku_id] = units.get(line.sku_id, 0) + line.quantity
            found += [
                RetailerReturn(p.distributor_id, p.return_id, p.outlet_id, s, n, r.occurred_at)
                for s, n in units.items()
            ]
        return found

    async def applied_of(self, scheme_id: str) -> dict[UUID, Applied]:
        return dict(self.applied.get(scheme_id, {}))

    async def save_applied(self, changed: Sequence[tuple[Grant, int]]) -> None:
        for grant, revision in changed:
            self.applied.setdefault(grant.scheme_id, {})[grant.order_event_id] = Applied(grant, revision)

    async def distributor_orders(self, distributor_id: str) -> list[OrderContext]:
        return self._contexts({i for i, o in self.orders.items() if o.payload.distributor_id == distributor_id})

    async def latest_submission(self, distributor_id: str, claim_id: str) -> tuple[int, dict[str, object]] | None:
        kept = self.submitted.get((distributor_id, claim_id))
        if not kept:
            return None
        revision, claim = kept[-1]
        return revision, claim.model_dump(mode="json")["payload"]

    async def add_submission(self, claim: SchemeClaimSubmitted, revision: int) -> None:
        p = claim.payload
        key = (p.distributor_id, p.claim_id)
        if any(c.event_id == claim.event_id for kept in self.submitted.values() for _, c in kept):
            return
        self.submitted.setdefault(key, []).append((revision, claim))
        current = self.claims.get(key)
        if current is None:
            self.claims[key] = StoredClaim(claim, 0, revision, None)
        elif (current.claim.occurred_at, current.claim.event_id) < (claim.occurred_at, claim.event_id):
            self.claims[key] = replace(current, claim=claim, claim_revision=revision)

    async def claims_of(self, scheme_ids: Iterable[str]) -> list[StoredClaim]:
        wanted = set(scheme_ids)
        return [self.claims[k] for k in sorted(self.claims) if self.claims[k].claim.payload.scheme_id in wanted]

    async def submissions(self, distributor_id: str, claim_id: str, current_revision: int) -> list[ClaimSubmission]:
        return [
            ClaimSubmission(
                revision=revision,
                event_id=c.event_id,
                occurred_at=c.occurred_at,
                claimed_amount=c.payload.claimed_amount,
                current=revision == current_revision,
            )
            for revision, c in self.submitted.get((distributor_id, claim_id), [])
        ]

    async def save_assessment(
        self, distributor_id: str, claim_id: str, figures: dict[str, object], revision: int
    ) -> None:
        key = (distributor_id, claim_id)
        self.claims[key] = replace(self.claims[key], assessed=figures, revision=revision)

    async def append_to_outbox(self, events: Sequence[Envelope]) -> None:
        self.outbox.extend(events)
