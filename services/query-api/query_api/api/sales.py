"""HTTP API of query-api: drill-down over secondary sales."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import Format, export_response
from query_api.api.money import Priced
from query_api.api.params import CellKeys, ListingDep, ParentId, PeriodDep, SalesFilterDep, SegmentDep, node_name
from query_api.reads.freshness import Freshness, read_freshness
from query_api.reads.sales import PARENT_LEVEL, DrillQuery, Level, drill, parent_exists
from query_api.reads.sales_segments import segment_drill
from query_api.reads.sales_trend import daily_sales
from sellthrough_contracts.topics import TRADE
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep
from sellthrough_runtime.problems import ProblemError

# Narrowed to the caller's scope (api/caller.py); reps read only the daily trend and events of their own orders.
router = APIRouter(prefix="/v1")


class SalesFigures(BaseModel):
    """Net secondary sales and what makes them up (README, "What each figure means")."""

    value: Decimal = Field(description="Net value: ordered - cancelled - returned by retailers.")
    units: int = Field(description="Net units: ordered - cancelled - returned by retailers.")
    lines: int = Field(description="Order lines of orders not cancelled.")
    ordered_value: Decimal = Field(description="Value of every order captured (quantity x unit price).")
    ordered_units: int
    cancelled_value: Decimal = Field(description="Value of orders cancelled before any delivery.")
    cancelled_units: int
    returned_value: Decimal = Field(description="Retailer returns at the SKU's list price.")
    returned_units: int
    returned_damaged_units: int
    returned_expired_units: int
    returned_unsold_units: int
    delivered_units: int = Field(description="Units delivered against these orders (fill rate: / ordered_units).")


class SalesRow(SalesFigures):
    id: str | None = Field(description="Id of the node at the requested level; null for sales not yet placed.")
    name: str | None


class SalesTotal(SalesFigures):
    rows: int = Field(description="Number of nodes, which may exceed the rows returned (see limit).")


class SalesResponse(Priced):
    level: Level
    parent_id: str | None
    date_from: date
    date_to: date
    brand: str | None
    sku_id: str | None
    channels: list[str] | None = Field(default=None, description="Only outlets of these channels (null: all).")
    outlet_classes: list[str] | None = Field(default=None, description="Only outlets of these classes (null: all).")
    rows: list[SalesRow]
    total: SalesTotal
    freshness: Freshness


@router.get(
    "/sales", response_model=SalesResponse, operation_id="get_sales", tags=["sales"], dependencies=[readers(*READERS)]
)
async def get_sales(
    scope: CallerScope,
    conn: ConnectionDep,
    f: SalesFilterDep,
    page: ListingDep,
    segment: SegmentDep,
    level: Annotated[Level, Query(description="Drill level of the rows returned.")] = Level.NATIONAL,
    parent_id: ParentId = None,
) -> SalesResponse | Response:
    """Secondary sales at one drill level, largest first, with the total over all nodes."""
    if parent_id is not None and level in (Level.NATIONAL, Level.ZONE):
        raise ProblemError(422, "invalid-parent", f"Level '{level}' takes no parent_id.")
    scope.require_level(level, parent_id)
    if parent_id is not None and not await parent_exists(conn, level, parent_id):
        raise ProblemError(404, "unknown-parent", f"No {PARENT_LEVEL[level]} '{parent_id}' is known.")
    query = DrillQuery(level, parent_id, f.date_from, f.date_to, f.brand, f.sku_id, page.limit, scope.distributor_list)
    result = await segment_drill(conn, query, segment) if segment.narrowed else await drill(conn, query)
    freshness = await read_freshness(conn, "sales_daily", [TRADE.name])

    response = SalesResponse(
        level=level,
        parent_id=parent_id,
        date_from=f.date_from,
        date_to=f.date_to,
        brand=f.brand,
        sku_id=f.sku_id,
        channels=segment.channels,
        outlet_classes=segment.outlet_classes,
        rows=[SalesRow(id=r.id, name=node_name(r.id, r.name), **r.figures) for r in result.rows],
        total=SalesTotal(**result.total, rows=result.row_count),
        freshness=freshness,
    )
    if page.file:
        return export_response(SalesRow, response.rows, "sales", page.fmt)
    return response


class SalesDay(SalesFigures):
    day: date


class DailySalesResponse(Priced):
    date_from: date
    date_to: date
    days: list[SalesDay] = Field(description="Every day of the range, oldest first (zero where nothing sold).")
    freshness: Freshness


@router.get(
    "/sales/daily",
    response_model=DailySalesResponse,
    operation_id="get_sales_daily",
    tags=["sales"],
    dependencies=[readers(*READERS, Role.REP)],
)
async def get_sales_daily(
    scope: CallerScope, conn: ConnectionDep, keys: CellKeys, period: PeriodDep, fmt: Format = "json"
) -> DailySalesResponse | Response:
    """Net sales and what makes them up per business day, for any drill-down cell: a trend in one request."""
    date_from, date_to = period.date_from, period.date_to
    keys = await scope.cell(conn, keys)
    records = await daily_sales(conn, date_from, date_to, keys)
    freshness = await read_freshness(conn, "sales_daily", [TRADE.name])
    found = {r["day"]: r for r in records}
    zero = SalesTotal.model_fields.keys() - {"rows"}
    days = [
        SalesDay(day=day, **({k: found[day][k] for k in zero} if day in found else dict.fromkeys(zero, 0)))
        for day in (date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1))
    ]
    response = DailySalesResponse(date_from=date_from, date_to=date_to, days=days, freshness=freshness)
    if fmt != "json":
        return export_response(SalesDay, response.days, "sales-daily", fmt)
    return response
