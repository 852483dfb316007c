"""How one posted batch turns into per-event results. Pure: handlers/accept_batch.py does the I/O around it."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from order_capture.domain.business_keys import BUSINESS_IDS
from order_capture.domain.fingerprint import content_hash
from order_capture.domain.validation import Reason, Rejection
from order_capture.domain.verification import LocationResult
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCaptured

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class StoreOutcome:
    accepted: set[UUID]
    duplicates: set[UUID]
    """event_ids already accepted with the same content, or new ones for an order already captured alike."""
    reused: set[UUID]
    """event_ids already accepted with different content: a client bug, not a retry."""
    fact_reused: dict[UUID, UUID] = field(default_factory=dict)
    """New event_ids for a fact (an order, a delivery, ...) already accepted with other content -> the event it
    was accepted as."""


class EventResult(BaseModel):
    index: int = Field(description="Position of the event in the posted batch.")
    event_id: UUID | None = None
    status: Status
    reason: str | None = Field(default=None, description="Why it was rejected; a stable code.")
    detail: str | None = None
    errors: list[dict[str, str]] | None = Field(default=None, description="Field errors, for invalid_fields.")
    location: LocationResult | None = Field(
        default=None,
        description="The location verdict of an order or visit at a known outlet (README, 'Field verification').",
    )


class BatchResult(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[EventResult]
    device_clock_skew_s: float | None = Field(
        default=None, description="The batch's device_time minus server time, in seconds, when it sent one."
    )

    def with_locations(self, locations: Mapping[UUID, LocationResult]) -> "BatchResult":
        """Each accepted or duplicate order and visit with its verdict (and an off_site rejection with it too).

        Fills the results in place and returns this batch: they were made for this batch by `results_for` and
        nothing else holds them. A copy of each result (model_copy) cost as much as building it."""
        for r in self.results:
            if (
                r.event_id is not None
                and (location := locations.get(r.event_id)) is not None
                and (r.status != "rejected" or r.reason == Reason.OFF_SITE.value)
            ):
                r.location = location
        return self


@dataclass
class BatchPlan:
    """Parsed events of a batch, with copies of the same event inside the batch set aside: a client
    retrying within one sync may send an event twice, and the first copy decides for both."""

    outcomes: list[Envelope | Rejection]
    repeat_of: dict[int, int] = field(default_factory=dict)

    _candidates: list[Envelope] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def candidates(self) -> list[Envelope]:
        """The first copy of each parsed event, in batch order. Built once: the handler asks for it six times per
        batch, and `plan_batch` has settled the outcomes by then (it reads outcomes only, never this)."""
        if self._candidates is None:
            self._candidates = [
                o for i, o in enumerate(self.outcomes) if isinstance(o, Envelope) and i not in self.repeat_of
            ]
        return self._candidates


def plan_batch(outcomes: list[Envelope | Rejection]) -> BatchPlan:
    plan = BatchPlan(list(outcomes))
    first_index: dict[UUID, int] = {}
    for i, outcome in enumerate(outcomes):
        if not isinstance(outcome, Envelope):
            continue
        first = first_index.setdefault(outcome.event_id, i)
        if first == i:
            continue
        original = outcomes[first]
        assert isinstance(original, Envelope)
        if content_hash(original) == content_hash(outcome):
            plan.repeat_of[i] = first
        else:
            plan.outcomes[i] = Rejection(
                Reason.EVENT_ID_REUSED, "event_id repeated in this batch with different content", outcome.event_id
            )
    return plan


def results_for(plan: BatchPlan, refused: dict[UUID, Rejection], stored: StoreOutcome) -> BatchResult:
    """`refused`: events failing reference checks; `stored`: what the idempotent insert decided."""
    results: list[EventResult] = []
    for i, outcome in enumerate(plan.outcomes):
        if i in plan.repeat_of:
            first = results[plan.repeat_of[i]]
            result = first.model_copy(
                update={"index": i, "status": "duplicate" if first.status != "rejected" else "rejected"}
            )
        elif isinstance(outcome, Rejection):
            result = _rejected(i, outcome)
        elif outcome.event_id in refused:
            result = _rejected(i, refused[outcome.event_id])
        elif outcome.event_id in stored.reused:
            result = _rejected(
                i,
                Rejection(
                    Reason.EVENT_ID_REUSED,
                    "this event_id was already accepted with different content; use a new id for a new event",
                    outcome.event_id,
                ),
            )
        elif (accepted_as := stored.fact_reused.get(outcome.event_id)) is not None:
            result = _rejected(i, _fact_reused(outcome, accepted_as))
        elif outcome.event_id in stored.accepted:
            result = EventResult(index=i, event_id=outcome.event_id, status="accepted")
        else:
            result = EventResult(index=i, event_id=outcome.event_id, status="duplicate")
        results.append(result)
    return BatchResult(
        accepted=sum(r.status == "accepted" for r in results),
        duplicate=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )


def _fact_reused(event: Envelope, accepted_as: UUID) -> Rejection:
    field = BUSINESS_IDS[event.event_type]
    payload = getattr(event, "payload", None)
    business_id, distributor_id = getattr(payload, field, ""), getattr(payload, "distributor_id", "")
    if isinstance(event, OrderCaptured):
        reason, what = Reason.ORDER_ID_REUSED, f"order '{business_id}'"
    else:
        reason, what = Reason.BUSINESS_ID_REUSED, f"{event.event_type} {field} '{business_id}'"
    return Rejection(
        reason,
        f"{what} of distributor '{distributor_id}' was already accepted as event {accepted_as} with different "
        "content; a fact is counted once",
        event.event_id,
    )


def _rejected(index: int, rejection: Rejection) -> EventResult:
    return EventResult(
        index=index,
        event_id=rejection.event_id,
        status="rejected",
        reason=rejection.reason.value,
        detail=rejection.detail,
        errors=rejection.errors or None,
    )
