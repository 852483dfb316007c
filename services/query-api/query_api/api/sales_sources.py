"""HTTP API: GET /v1/sales/sources, net secondary sales by where they came from (reps' orders, returns, each
distributor billing feed), and how the feeds' invoices matched the reps' orders."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.csv_export import Format, csv_response
from query_api.api.params import PeriodDep
from query_api.reads.freshness import Freshness, read_freshness
from query_api.reads.sales_sources import SourceQuery, by_source, invoice_matching
from sellthrough_contracts.common import ID_PATTERN, Currency
from sellthrough_contracts.topics import TRADE
from sellthrough_runtime.dependencies import ConnectionDep

router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])


class SourceRow(BaseModel):
    origin: Literal["order", "return", "invoice"] = Field(
        description="order: reps' orders (net of cancellations); return: retailer returns; invoice: a distributor "
        "billing feed's invoices without an order (an invoice naming an order is that order's delivery)."
    )
    source: str = Field(description="For invoices, the feed recorded as the events' source (e.g. dms, tally).")
    value: Decimal
    units: int
    documents: int = Field(description="Orders, returns or invoices behind the row.")


class InvoiceMatching(BaseModel):
    matched: int = Field(description="Invoices that delivered an order captured by a rep.")
    awaiting_order: int = Field(
        description="Invoices naming an order not captured (yet): they count nothing until it arrives."
    )
    without_order: int = Field(description="Invoices without an order: counted as sales of their own.")


class SourcesTotal(BaseModel):
    value: Decimal = Field(description="Net sales value: the rows' sum, as GET /v1/sales gives it.")
    units: int


class SourcesResponse(BaseModel):
    currency: Currency = "INR"
    date_from: date
    date_to: date
    distributor_id: str | None
    rows: list[SourceRow] = Field(description="They sum to the net sales of the same period and distributor.")
    total: SourcesTotal
    invoices: InvoiceMatching
    freshness: Freshness


@router.get("/sales/sources", response_model=SourcesResponse, operation_id="get_sales_sources", tags=["sales"])
async def get_sales_sources(
    scope: CallerScope,
    conn: ConnectionDep,
    period: PeriodDep,
    distributor: Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this distributor.")] = None,
    fmt: Format = "json",
) -> SourcesResponse | Response:
    """Net secondary sales by source: what the reps captured, what retailers returned, and what each distributor
    billing feed (DMS, Tally) added without an order."""
    if distributor is not None:
        scope.require_distributor(distributor)
    query = SourceQuery(period.date_from, period.date_to, distributor, scope.distributor_list)
    rows = [SourceRow(**dict(r)) for r in await by_source(conn, query)]
    matching = InvoiceMatching(**dict(await invoice_matching(conn, query)))
    freshness = await read_freshness(conn, "sales_daily", [TRADE.name])
    response = SourcesResponse(
        date_from=period.date_from,
        date_to=period.date_to,
        distributor_id=distributor,
        rows=rows,
        total=SourcesTotal(value=sum((r.value for r in rows), Decimal(0)), units=sum(r.units for r in rows)),
        invoices=matching,
        freshness=freshness,
    )
    if fmt == "csv":
        return csv_response(SourceRow, response.rows, "sales-sources")
    return response
