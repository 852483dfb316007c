"""HTTP API of provenance: GET /v1/sales/events lists the events behind any drill-down cell."""

from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import EXPORT_RESPONSES, ExportBatchDep, Format, stream_response
from query_api.api.money import Priced
from query_api.api.params import CellKeys, PeriodDep
from query_api.reads.provenance import CellFilter, Cursor, events_in_batches, events_page, events_total
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep, ContextDep
from sellthrough_runtime.problems import ProblemError

# Narrowed to the caller's scope (api/caller.py): a rep reads the events of its own orders and visits.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS, Role.REP)])


PageCursor = Annotated[
    str | None, Query(max_length=100, description="`next_cursor` of the previous page; absent for the first page.")
]
PageLimit = Annotated[int, Query(ge=1, le=1000, description="Events per page (JSON; a file has every event).")]


class SourceEvent(BaseModel):
    event_id: UUID
    event_type: str = Field(description="OrderCaptured, OrderCancelled or ReturnRecorded.")
    reference: str = Field(description="The order id (orders, cancellations) or return id.")
    day: date = Field(description="The business day the event counts on (a cancellation: its order's day).")
    outlet_id: str
    distributor_id: str | None
    rep_id: str = Field(description="The order's rep; empty for a retailer return.")
    source: str = Field(description="The device or connector that sent it.")
    actor: str
    occurred_at: datetime
    recorded_at: datetime | None
    sync_delay_seconds: float | None = Field(description="recorded_at - occurred_at: how late the device synced.")
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    location_verdict: str | None = Field(
        default=None,
        description="An order's location verdict at accept time (on_site, off_site, low_accuracy, no_gps, "
        "outlet_not_geotagged, mock_location); empty for other events and orders accepted before verdicts.",
    )
    location_distance_m: float | None = Field(default=None, description="The order's distance to its outlet.")
    skus: int = Field(description="SKUs of the event within the filter.")
    lines: int = Field(description="Order lines it adds (a cancellation: takes away).")
    units: int = Field(description="Net units it contributes: negative for cancellations and returns.")
    value: Decimal = Field(description="Net value it contributes: negative for cancellations and returns.")


class EventsTotal(BaseModel):
    events: int
    lines: int
    units: int
    value: Decimal = Field(description="Equals the net value of the drill-down cell with the same filter.")


class EventsPage(Priced):
    date_from: date
    date_to: date
    rows: list[SourceEvent]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    total: EventsTotal = Field(description="Over every page.")


@router.get(
    "/sales/events",
    response_model=EventsPage,
    operation_id="get_sales_events",
    tags=["sales"],
    responses=EXPORT_RESPONSES,
)
async def get_sales_events(
    scope: CallerScope,
    conn: ConnectionDep,
    context: ContextDep,
    batch: ExportBatchDep,
    keys: CellKeys,
    period: PeriodDep,
    cursor: PageCursor = None,
    limit: PageLimit = 200,
    fmt: Format = "json",
) -> EventsPage | Response:
    """The events behind a drill-down cell (any of zone, region, distributor, outlet, SKU or brand, rep, days),
    oldest day first, each with what it adds to the net figure: the listed events sum to the cell. As a file
    (format=csv, parquet, xlsx) every event from `cursor` on, streamed from a server-side cursor."""
    date_from, date_to = period.date_from, period.date_to
    try:
        after = Cursor.decode(cursor) if cursor else None
    except ValueError:
        raise ProblemError(422, "invalid-cursor", "The cursor is not one this endpoint gave out.") from None
    cell = CellFilter(date_from, date_to, await scope.cell(conn, keys))
    if fmt != "json":
        return stream_response(SourceEvent, _exported(context, cell, after, batch), "sales-events", fmt)
    records = await events_page(conn, cell, after, limit + 1)
    total = await events_total(conn, cell)
    rows = [_source_event(r) for r in records[:limit]]
    more = len(records) > limit
    page = EventsPage(
        date_from=date_from,
        date_to=date_to,
        rows=rows,
        next_cursor=Cursor(rows[-1].day, rows[-1].event_id).encode() if more else None,
        total=EventsTotal(events=total["events"], lines=total["lines"], units=total["units"], value=total["value"]),
    )
    return page


async def _exported(
    context: ContextDep, cell: CellFilter, after: Cursor | None, batch: int
) -> AsyncIterator[list[SourceEvent]]:
    async for records in events_in_batches(context.pool, cell, after, batch):
        yield [_source_event(r) for r in records]


def _source_event(r: object) -> SourceEvent:
    record = dict(r)  # type: ignore[call-overload]
    occurred, recorded = record["occurred_at"], record["recorded_at"]
    delay = (recorded - occurred).total_seconds() if recorded else None
    return SourceEvent(**record, sync_delay_seconds=delay)
