"""POST /v1/events: a batch from a mobile client or connector, read and checked for shape, then accepted by
handlers/accept_batch.py."""

import contextlib
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from order_capture.adapters.masters_cache import masters_of
from order_capture.adapters.store import PgBatchStore
from order_capture.domain.batch import BatchResult
from order_capture.handlers.accept_batch import Forbidden, ForeignCurrency, Ingested, accept_batch
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts import Envelope, event_type_names
from sellthrough_runtime.dependencies import ContextDep, PrincipalDep, RelayDep, settings_of
from sellthrough_runtime.metrics import EVENTS_INGESTED
from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.ratelimit import charge

router = APIRouter(prefix="/v1")
log = logging.getLogger(__name__)

SettingsDep = Annotated[OrderCaptureSettings, Depends(settings_of(OrderCaptureSettings))]

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
                            "minItems": 1,
                            "maxItems": 1000,
                            # Any JSON: each item is judged on its own and rejected in its result if it is not
                            # an event (a batch is never refused for one bad event).
                            "items": {"description": f"An event, one of: {', '.join(event_type_names())}"},
                        },
                        "device_time": {
                            # null is taken as absent (the batch has no device clock), as it always was.
                            "type": ["string", "null"],
                            "format": "date-time",
                            "description": "The device's clock when it sent the batch, with its offset. Optional: "
                            "the difference from server time is the device's clock skew, returned as "
                            "device_clock_skew_s and kept with each order and visit's LocationChecked.",
                        },
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
            raise ProblemError(
                413, "payload-too-large", f"The body is larger than {limit} bytes; send smaller batches."
            )
        chunks.append(chunk)
    return b"".join(chunks)


_DEVICE_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def _device_time(document: dict[str, Any]) -> datetime | None:
    raw = document.get("device_time")
    if raw is None:
        return None
    # Only a string: pydantic would read a number as a Unix timestamp, which the document does not offer.
    if isinstance(raw, str):
        with contextlib.suppress(ValidationError):
            return _DEVICE_TIME.validate_python(raw)
    raise ProblemError(422, "invalid-device-time", "'device_time' must be an ISO 8601 date-time with its UTC offset.")


def _batch_of(body: bytes, max_events: int) -> tuple[list[Any], datetime | None]:
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
            413,
            "batch-too-large",
            f"A batch holds at most {max_events} events; this one has {len(events)}.",
            max_events=max_events,
        )
    return events, _device_time(document)


@router.post(
    "/events",
    response_model=BatchResult,
    operation_id="post_events",
    tags=["events"],
    summary="Post a batch of events (orders, invoices, counts, reference data)",
    openapi_extra=_REQUEST_BODY_DOC,
    responses={
        400: {"description": "Not JSON"},
        401: {"description": "No or bad token"},
        403: {"description": "Token may not post these events"},
        413: {"description": "Too large"},
        415: {"description": "Not application/json"},
        422: {"description": "Not a batch, or an event in another currency than the books' (foreign-currency)"},
    },
)
async def post_events(
    request: Request, principal: PrincipalDep, context: ContextDep, settings: SettingsDep, relay: RelayDep
) -> BatchResult:
    """Each event is accepted, recognised as a duplicate of one already accepted (same event_id and
    content), or rejected with a reason. Accepted events are durable when this returns."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ProblemError(415, "unsupported-media-type", "Send the batch as application/json.")
    raw_events, device_time = _batch_of(await _read_body(request, settings.max_body_bytes), settings.max_batch_events)
    # The rate limit weighs a batch by its events: authentication counted the request as one.
    await charge(request, principal.role.value, principal.subject, len(raw_events) - 1)

    try:
        async with PgBatchStore(context.pool, masters_of(context)) as store:
            ingested = await accept_batch(raw_events, device_time, principal, settings, store, datetime.now(UTC))
    except Forbidden as refused:
        raise ProblemError(
            403,
            "forbidden",
            "This token may not post some events of the batch; nothing was accepted.",
            "; ".join(f"event {f['index']}: {f['reason']}" for f in refused.violations[:10]),
            violations=refused.violations,
        ) from None
    except ForeignCurrency as foreign:
        raise ProblemError(
            422,
            "foreign-currency",
            f"The books are kept in {foreign.currency} only; nothing was accepted.",
            "; ".join(f"event {f['index']}: {f['currency']}" for f in foreign.events[:10]),
            currency=foreign.currency,
            events=foreign.events,
        ) from None
    if ingested.stored.accepted:
        relay.wake()
    _count(ingested, context.service)
    batch = ingested.batch
    log.info(
        "batch ingested",
        extra={
            "principal": principal.subject,
            "accepted": batch.accepted,
            "duplicate": batch.duplicate,
            "rejected": batch.rejected,
        },
    )
    return batch


def _count(ingested: Ingested, service: str) -> None:
    """Metrics per event type and outcome, and a log line per rejected event."""
    outcomes: Counter[tuple[str, str, str]] = Counter()
    for i, (outcome, result) in enumerate(zip(ingested.plan.outcomes, ingested.batch.results, strict=True)):
        event_type = outcome.event_type if isinstance(outcome, Envelope) else "unknown"
        outcomes[(event_type, result.status, result.reason or "")] += 1
        if result.status == "rejected":
            log.info(
                "event rejected",
                extra={
                    "event_id": str(result.event_id),
                    "event_type": event_type,
                    "reason": result.reason,
                    "detail": result.detail,
                    "index": i,
                },
            )
    for (event_type, status, reason), count in outcomes.items():
        EVENTS_INGESTED.labels(service, event_type, status, reason).inc(count)
