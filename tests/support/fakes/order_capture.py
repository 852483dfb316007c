"""order-capture's BatchStore in memory: the test brand's masters, and acceptance by event id and content
(adapters/store.py keeps the business-key claims and the outbox, with their PostgreSQL tests)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from order_capture.domain.batch import StoreOutcome
from order_capture.domain.fingerprint import content_hash
from order_capture.domain.territory import RepTerritory, Territories
from order_capture.domain.validation import KnownMasters, References
from order_capture.domain.verification import OutletPlace
from sellthrough_contracts import Envelope, decode_event
from sellthrough_runtime.auth import Principal, Role
from sellthrough_runtime.outbox import OutboxRecord
from tests.support.brand import OUTLETS, REPS, SKUS


@dataclass
class FakeBatchStore:
    places: dict[str, OutletPlace] = field(default_factory=dict)
    accepted: dict[UUID, bytes] = field(default_factory=dict)
    outbox: list[Envelope] = field(default_factory=list)
    reads: int = 0

    async def units_per_case(self, skus: set[str]) -> dict[str, int]:
        return {}  # the test brand's SKUs have no case size

    async def known_masters(self, refs: References) -> KnownMasters:
        self.reads += 1
        return KnownMasters(
            outlet_distributor={o: d for o, d in OUTLETS.items() if o in refs.outlets},
            skus=frozenset(SKUS) & refs.skus,
            reps=frozenset(REPS) & refs.reps,
            distributors=frozenset(OUTLETS.values()) & refs.distributors,
        )

    async def territories(self, principal: Principal, events: list[Envelope]) -> Territories:
        if principal.role is not Role.REP or principal.subject not in REPS:
            return Territories()
        return Territories(RepTerritory(frozenset({REPS[principal.subject]})))

    async def outlet_places(self, events: list[Envelope]) -> dict[str, OutletPlace]:
        return dict(self.places)

    async def store(
        self, events: list[Envelope], recorded_at: datetime, derived: Mapping[UUID, OutboxRecord]
    ) -> StoreOutcome:
        outcome = StoreOutcome(set(), set(), set())
        for e in events:
            known = self.accepted.get(e.event_id)
            if known is None:
                self.accepted[e.event_id] = content_hash(e)
                outcome.accepted.add(e.event_id)
                # A derived event arrives in its wire form, read back as the relay's consumers would read it.
                self.outbox += [e, *([decode_event(derived[e.event_id].value)] if e.event_id in derived else [])]
            elif known == content_hash(e):
                outcome.duplicates.add(e.event_id)
            else:
                outcome.reused.add(e.event_id)
        return outcome
