"""HTTP API: POST /v1/events takes a batch from a mobile client or connector."""

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sellthrough_contracts import Envelope, event_type_names
from sellthrough_runtime.app import ServiceContext
from sellthrough_runtime.auth import CurrentPrincipal, Role, require_roles
from sellthrough_runtime.metrics import EVENTS_INGESTED
from sellthrough_runtime.outbox import OutboxRelay
from sellthrough_runtime.problems import ProblemError

from order_capture.policy import violation
from order_capture.settings import OrderCaptureSettings
from order_capture.store import load_known_masters, store_events
from order_capture.validation import Reason, Rejection, check_references, content_hash, parse, references_of

router = APIRouter(prefix="/v1")

Status = Literal["accepted", "duplicate", "rejected"]


class EventResult(BaseModel):
    index: int = Field(description="Position of the event in the posted batch.")
    event_id: UUID | None = None
    status: Status
    reason: str | None = Field(default=None, description="Why it was rejected; a stable code.")
    detail: str | None = None
    errors: list[dict[str, str]] | None = Field(default=None, description="Field errors, for invalid_fields.")


class BatchResult(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[EventResult]


_REQUEST_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["events"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "maxItems": 1000,
                            "items": {"type": "object", "description": f"One of: {', '.join(event_type_names())}"},
                        }
                    },
                }
            }
        },
    }
}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, "payload-too-large", f"The body is larger than {limit} bytes; send smaller batches.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, "payload-too-large", f"The body is larger than {limit} bytes; send smaller batches.")
        chunks.append(chunk)
    return b"".join(chunks)


def _batch_of(body: bytes, max_events: int) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ProblemError(400, "invalid-json", "The body is not valid JSON.", str(error)) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise ProblemError(422, "invalid-batch", "The body must be a JSON object with an 'events' array.")
    events: list[Any] = document["events"]
    if not events:
        raise ProblemError(422, "empty-batch", "The 'events' array is empty.")
    if len(events) > max_events:
        raise ProblemError(
            413, "batch-too-large", f"A batch holds at most {max_events} events; this one has {len(events)}.",
            max_events=max_events,
        )
    return events


@router.post(
    "/events",
    response_model=BatchResult,
    operation_id="post_events",
    tags=["events"],
    summary="Post a batch of events (orders, invoices, counts, reference data)",
    openapi_extra=_REQUEST_BODY_DOC,
    responses={400: {"description": "Not JSON"}, 401: {"description": "No or bad token"},
               403: {"description": "Token may not post these events"}, 413: {"description": "Too large"},
               415: {"description": "Not application/json"}, 422: {"description": "Not a batch"}},
)
async def post_events(request: Request, principal: CurrentPrincipal) -> BatchResult:
    """Each event is accepted, recognised as a duplicate of one already accepted (same event_id and
    content), or rejected with a reason. Accepted events are durable when this returns."""
    context: ServiceContext = request.app.state.context
    settings = context.settings
    assert isinstance(settings, OrderCaptureSettings)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ProblemError(415, "unsupported-media-type", "Send the batch as application/json.")
    raw_events = _batch_of(await _read_body(request, settings.max_body_bytes), settings.max_batch_events)

    forbidden = [
        {"index": i, "reason": reason}
        for i, raw in enumerate(raw_events)
        if isinstance(raw, dict) and (reason := violation(principal, raw))
    ]
    if forbidden:
        raise ProblemError(
            403, "forbidden", "This token may not post some events of the batch; nothing was accepted.",
            "; ".join(f"event {f['index']}: {f['reason']}" for f in forbidden[:10]), violations=forbidden,
        )

    now = datetime.now(UTC)
    tolerance = timedelta(seconds=settings.future_tolerance_seconds)
    outcomes: list[Envelope | Rejection] = [parse(raw, now, tolerance) for raw in raw_events]

    # A batch may repeat an event (a client retrying inside one sync): the first copy decides.
    first_index: dict[UUID, int] = {}
    repeats: dict[int, int] = {}
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Envelope):
            if outcome.event_id in first_index:
                repeats[i] = first_index[outcome.event_id]
            else:
                first_index[outcome.event_id] = i
    candidates = [o for i, o in enumerate(outcomes) if isinstance(o, Envelope) and i not in repeats]

    async with context.pool.acquire() as conn:
        known = await load_known_masters(conn, references_of(candidates))
        checked: dict[UUID, Rejection] = {}
        for event in candidates:
            if (rejection := check_references(event, known)) is not None:
                checked[event.event_id] = rejection
        to_store = [e.stamped(now) for e in candidates if e.event_id not in checked]
        stored = await store_events(conn, to_store)
    if stored.accepted:
        relay = context.extras["relay"]
        assert isinstance(relay, OutboxRelay)
        relay.wake()

    results = []
    for i, outcome in enumerate(outcomes):
        result = _result(i, outcome, checked, stored.accepted, stored.reused)
        if i in repeats:
            first = outcomes[repeats[i]]
            assert isinstance(outcome, Envelope) and isinstance(first, Envelope)
            if content_hash(first) != content_hash(outcome):
                result = _rejected(i, Rejection(Reason.EVENT_ID_REUSED, "event_id repeated in this batch with "
                                                "different content", outcome.event_id))
            elif (earlier := results[repeats[i]]).status != "rejected":
                result = EventResult(index=i, event_id=outcome.event_id, status="duplicate")
            else:
                result = earlier.model_copy(update={"index": i})
        results.append(result)
        event_type = outcome.event_type if isinstance(outcome, Envelope) else "unknown"
        EVENTS_INGESTED.labels(context.service, event_type, result.status, result.reason or "").inc()

    return BatchResult(
        accepted=sum(r.status == "accepted" for r in results),
        duplicate=sum(r.status == "duplicate" for r in results),
        rejected=sum(r.status == "rejected" for r in results),
        results=results,
    )


def _rejected(index: int, rejection: Rejection) -> EventResult:
    return EventResult(
        index=index, event_id=rejection.event_id, status="rejected", reason=rejection.reason.value,
        detail=rejection.detail, errors=rejection.errors or None,
    )


def _result(
    index: int, outcome: Envelope | Rejection, checked: dict[UUID, Rejection], accepted: set[UUID], reused: set[UUID]
) -> EventResult:
    if isinstance(outcome, Rejection):
        return _rejected(index, outcome)
    if outcome.event_id in checked:
        return _rejected(index, checked[outcome.event_id])
    if outcome.event_id in reused:
        return _rejected(index, Rejection(Reason.EVENT_ID_REUSED, "this event_id was already accepted with "
                                          "different content; generate a new id for a new event", outcome.event_id))
    if outcome.event_id in accepted:
        return EventResult(index=index, event_id=outcome.event_id, status="accepted")
    return EventResult(index=index, event_id=outcome.event_id, status="duplicate")


class MastersStatus(BaseModel):
    distributors: int
    outlets: int
    skus: int
    reps: int


@router.get(
    "/reference/status",
    response_model=MastersStatus,
    operation_id="reference_status",
    tags=["reference"],
    dependencies=[require_roles(Role.ADMIN, Role.ANALYST, Role.CONNECTOR)],
)
async def reference_status(request: Request) -> MastersStatus:
    """How many masters this service knows, to check reference data has arrived before posting orders."""
    context: ServiceContext = request.app.state.context
    row = await context.pool.fetchrow(
        "SELECT (SELECT count(*) FROM known_distributors) AS distributors, (SELECT count(*) FROM known_outlets) "
        "AS outlets, (SELECT count(*) FROM known_skus) AS skus, (SELECT count(*) FROM known_reps) AS reps"
    )
    return MastersStatus(**dict(row))
