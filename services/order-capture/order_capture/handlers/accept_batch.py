"""Accept one posted batch: judge every event with the domain rules, store what passes through one adapter.

The steps, in order (docs/architecture.md lists the whole POST path): the token's write policy over the raw
events; parsing and the time window; copies inside the batch; reference, territory and visit checks against
the masters the adapter loads; location verdicts against the outlets' geotags; the idempotent store of what is
left with its LocationChecked; per-event results.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from order_capture.domain.batch import BatchPlan, BatchResult, StoreOutcome, plan_batch, results_for
from order_capture.domain.clock import Window
from order_capture.domain.formats import case_skus, check_gst, foreign_currencies, in_units
from order_capture.domain.policy import violation
from order_capture.domain.territory import Territories, check_territory
from order_capture.domain.validation import (
    KnownMasters,
    References,
    Rejection,
    check_references,
    parse,
    references_of,
)
from order_capture.domain.verification import OutletPlace, check_locations, location_checked, off_site_rejection
from order_capture.domain.visits import check_visit
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import Envelope
from sellthrough_runtime.auth import Principal
from sellthrough_runtime.outbox import OutboxRecord


class BatchStore(Protocol):
    """What accepting a batch reads and writes: adapters/store.PgBatchStore."""

    async def units_per_case(self, skus: set[str]) -> dict[str, int]: ...

    async def known_masters(self, refs: References) -> KnownMasters: ...

    async def territories(self, principal: Principal, events: list[Envelope]) -> Territories: ...

    async def outlet_places(self, events: list[Envelope]) -> dict[str, OutletPlace]: ...

    async def store(
        self, events: list[Envelope], recorded_at: datetime, derived: Mapping[UUID, OutboxRecord]
    ) -> StoreOutcome: ...


class ForeignCurrency(Exception):
    """Some events of the batch are in another currency than the books': nothing is accepted (the route answers
    422)."""

    def __init__(self, events: list[dict[str, Any]], currency: str) -> None:
        super().__init__(events)
        self.events = events
        self.currency = currency


class Forbidden(Exception):
    """The token may not post some events of the batch: nothing is accepted (the route answers 403)."""

    def __init__(self, violations: list[dict[str, Any]]) -> None:
        super().__init__(violations)
        self.violations = violations


@dataclass(frozen=True)
class Ingested:
    plan: BatchPlan
    stored: StoreOutcome
    batch: BatchResult


async def accept_batch(
    raw_events: list[Any],
    device_time: datetime | None,
    principal: Principal,
    settings: OrderCaptureSettings,
    store: BatchStore,
    now: datetime,
) -> Ingested:
    """Each event accepted, recognised as a duplicate, or rejected with a reason; raises Forbidden first if the
    token may not post one of them."""
    forbidden = [
        {"index": i, "reason": reason}
        for i, raw in enumerate(raw_events)
        if isinstance(raw, dict) and (reason := violation(principal, raw))
    ]
    if forbidden:
        raise Forbidden(forbidden)
    if foreign := foreign_currencies(raw_events, settings.currency):
        raise ForeignCurrency(foreign, settings.currency)
    if skus := case_skus(raw_events):  # orders entered in cases + units: read as units first
        sizes = await store.units_per_case(skus)
        raw_events = [in_units(raw, sizes) for raw in raw_events]

    skew = None if device_time is None else round((device_time - now).total_seconds(), 3)
    window = Window(
        now=now,
        max_age=settings.occurred_at_max_age(principal.role),
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
        role=principal.role.value,
    )
    plan = plan_batch([raw if isinstance(raw, Rejection) else parse(raw, window) for raw in raw_events])
    known = await store.known_masters(references_of(plan.candidates))
    territories = await store.territories(principal, plan.candidates)
    refused = {
        event.event_id: rejection
        for event in plan.candidates
        if (
            rejection := check_references(event, known)
            or check_territory(event, principal, known, territories)
            or check_visit(event, settings.no_order_reasons)
            or check_gst(event, known.sku_gst_rates)
        )
        is not None
    }
    checked = check_locations(
        [e for e in plan.candidates if e.event_id not in refused],
        await store.outlet_places(plan.candidates),
        settings,
    )
    refused |= {
        event_id: rejection
        for event_id, c in checked.items()
        if (rejection := off_site_rejection(c, settings)) is not None
    }
    derived: dict[UUID, OutboxRecord] = {
        event_id: location_checked(c, now, skew) for event_id, c in checked.items() if event_id not in refused
    }
    stored = await store.store([e for e in plan.candidates if e.event_id not in refused], now, derived)

    batch = results_for(plan, refused, stored).with_locations({i: c.result() for i, c in checked.items()})
    batch.device_clock_skew_s = skew
    return Ingested(plan, stored, batch)
