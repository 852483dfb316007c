"""HTTP API over stock positions, alerts and sell-in vs sell-through."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import export_response
from query_api.api.money import CASES_DOC, LOOSE_DOC, UNITS_PER_CASE_DOC, Priced, in_cases
from query_api.api.params import Brand, ListingDep, ParentId, PeriodDep, Sku, node_name
from query_api.reads.freshness import Freshness, projection_freshness
from query_api.reads.stock import (
    STOCK_PARENT,
    StockFilter,
    StockLevel,
    alert_counts,
    alert_list,
    parent_known,
    primary_vs_secondary,
    stock_rows,
)
from sellthrough_runtime.costly_reads import costly_read
from sellthrough_runtime.dependencies import ConnectionDep, ContextDep
from sellthrough_runtime.problems import ProblemError

# Narrowed to the caller's scope (api/caller.py); closed to reps.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])

Level = Annotated[
    StockLevel,
    Query(description="Rows per national, zone, region, distributor, or SKU (parent_id: a distributor)."),
]
AlertKind = Literal["overstock", "stockout_risk", "negative_stock"]


class StockRow(BaseModel):
    id: str | None
    name: str | None
    on_hand: int = Field(description="Book stock in units (sum over positions).")
    value: Decimal = Field(description="Stock value at the SKU's current list price.")
    positions: int = Field(description="Distributor x SKU positions included.")
    negative_positions: int = Field(description="Positions with negative book stock: sales without stock.")
    variance_units: int = Field(description="Counted minus book stock at each position's latest count.")
    variance_value: Decimal = Field(description="variance_units at list price; negative is a shortage.")
    units_per_case: int | None = Field(default=None, description=UNITS_PER_CASE_DOC + " Set at level sku.")
    on_hand_cases: int | None = Field(default=None, description=CASES_DOC.format("on_hand", "on_hand"))
    on_hand_loose_units: int | None = Field(default=None, description=LOOSE_DOC.format("on_hand"))

    @model_validator(mode="after")
    def _split(self) -> "StockRow":
        self.on_hand_cases, self.on_hand_loose_units = in_cases(self.on_hand, self.units_per_case)
        return self


class StockTotal(BaseModel):
    on_hand: int
    value: Decimal
    rows: int


class StockResponse(Priced):
    level: StockLevel
    parent_id: str | None
    rows: list[StockRow]
    total: StockTotal
    freshness: Freshness


class AlertCountRow(BaseModel):
    id: str | None
    name: str | None
    alerts: int
    negative_stock: int
    stockout_risk: int
    overstock: int


class Alert(BaseModel):
    distributor_id: str
    distributor_name: str | None
    sku_id: str
    sku_name: str | None
    kind: AlertKind
    on_hand: int
    avg_daily_sales: float
    days_of_cover: float | None
    threshold_days: float | None
    raised_at: AwareDatetime
    units_per_case: int | None = Field(default=None, description=UNITS_PER_CASE_DOC)
    on_hand_cases: int | None = Field(default=None, description=CASES_DOC.format("on_hand", "on_hand"))
    on_hand_loose_units: int | None = Field(default=None, description=LOOSE_DOC.format("on_hand"))

    @model_validator(mode="after")
    def _split(self) -> "Alert":
        self.on_hand_cases, self.on_hand_loose_units = in_cases(self.on_hand, self.units_per_case)
        return self


class AlertsResponse(BaseModel):
    level: StockLevel
    parent_id: str | None
    rows: list[AlertCountRow] = Field(description="Raised alerts per node at `level`.")
    alerts: list[Alert] = Field(description="The raised alerts under parent_id, most urgent first; at most `limit`.")
    total: int = Field(description="Every raised alert under parent_id matching the filters, however many are listed.")
    freshness: Freshness


class SellInRow(BaseModel):
    id: str | None
    name: str | None
    primary_value: Decimal
    primary_units: int
    secondary_value: Decimal
    secondary_units: int
    stock_build_units: int = Field(description="primary - secondary units: stock piling up at distributors.")
    sell_in_per_sell_out: float | None = Field(description="primary / secondary units; above 1 is loading.")


class SellInResponse(Priced):
    level: StockLevel
    parent_id: str | None
    date_from: date
    date_to: date
    rows: list[SellInRow]
    freshness: Freshness = Field(description="Of the primary (sell-in) side; /v1/sales reports the secondary side's.")


async def stock_filter(
    context: ContextDep,
    scope: CallerScope,
    page: ListingDep,
    level: Level = StockLevel.NATIONAL,
    parent_id: ParentId = None,
    brand: Brand = None,
    sku_id: Sku = None,
) -> StockFilter:
    if parent_id is not None and level not in STOCK_PARENT:
        raise ProblemError(422, "invalid-parent", f"Level '{level}' takes no parent_id.")
    scope.require_level(level, parent_id)
    if parent_id is not None:
        # The pool, not ConnectionDep: a costly read (primary-vs-secondary) connects only inside its computation.
        async with context.pool.acquire() as conn:
            if not await parent_known(conn, level, parent_id):
                raise ProblemError(404, "unknown-parent", f"No {STOCK_PARENT[level]} '{parent_id}' is known.")
    return StockFilter(level, parent_id, brand, sku_id, page.limit, scope.distributor_list)


StockFilterDep = Annotated[StockFilter, Depends(stock_filter)]
"""level, parent_id, brand, sku and limit, checked against the caller's scope."""


@router.get("/stock", response_model=StockResponse, operation_id="get_stock", tags=["stock"])
async def get_stock(f: StockFilterDep, page: ListingDep, conn: ConnectionDep) -> StockResponse | Response:
    """Distributor stock on hand now (book stock from the ledger), rolled up to the level asked."""
    rows = await stock_rows(conn, f)
    freshness = await projection_freshness(conn, "stock_positions")
    first = rows[0] if rows else None
    response = StockResponse(
        level=f.level,
        parent_id=f.parent_id,
        rows=[
            StockRow(
                id=r["node_id"],
                name=node_name(r["node_id"], r["name"]),
                on_hand=r["on_hand"],
                value=r["value"],
                positions=r["positions"],
                negative_positions=r["negative_positions"],
                variance_units=r["variance_units"],
                variance_value=r["variance_value"],
                units_per_case=r["units_per_case"],
            )
            for r in rows
        ],
        total=StockTotal(
            on_hand=int(first["total_on_hand"]) if first else 0,
            value=first["total_value"] if first else Decimal(0),
            rows=int(first["row_count"]) if first else 0,
        ),
        freshness=freshness,
    )
    if page.file:
        return export_response(StockRow, response.rows, "stock", page.fmt)
    return response


_NOT_READ = frozenset({"raised_at", "on_hand_cases", "on_hand_loose_units"})
"""Alert fields not read as such from the row: the raise time is its changed_at; the split is computed."""


@router.get("/alerts", response_model=AlertsResponse, operation_id="get_alerts", tags=["stock"])
async def get_alerts(
    f: StockFilterDep,
    page: ListingDep,
    conn: ConnectionDep,
    kind: Annotated[AlertKind | None, Query(description="Only this kind of alert.")] = None,
) -> AlertsResponse | Response:
    """Raised stock alerts: overstock, stock-out risk, negative book stock."""
    counts = await alert_counts(conn, f, kind)
    listed = await alert_list(conn, f, kind, page.limit)
    freshness = await projection_freshness(conn, "stock_alerts")
    response = AlertsResponse(
        level=f.level,
        parent_id=f.parent_id,
        rows=[
            AlertCountRow(
                id=r["node_id"],
                name=node_name(r["node_id"], r["name"]),
                **{k: r[k] for k in ("alerts", "negative_stock", "stockout_risk", "overstock")},
            )
            for r in counts
        ],
        alerts=[
            Alert(raised_at=r["changed_at"], **{k: r[k] for k in Alert.model_fields if k not in _NOT_READ})
            for r in listed
        ],
        total=int(listed[0]["total"]) if listed else 0,
        freshness=freshness,
    )
    if page.file:
        return export_response(Alert, response.alerts, "alerts", page.fmt)
    return response


@router.get(
    "/primary-vs-secondary", response_model=SellInResponse, operation_id="get_primary_vs_secondary", tags=["stock"]
)
@costly_read("primary-vs-secondary", cache=False)  # ~0.4 s for the demo brand; the dashboard polls it
async def get_primary_vs_secondary(
    context: ContextDep, period: PeriodDep, f: StockFilterDep, page: ListingDep
) -> SellInResponse | Response:
    """Sell-in (primary invoices) against sell-through (secondary orders) per period: the overstock picture."""
    async with context.pool.acquire() as conn:
        rows = await primary_vs_secondary(conn, f, period.date_from, period.date_to)
        freshness = await projection_freshness(conn, "primary_daily")
    response = SellInResponse(
        level=f.level,
        parent_id=f.parent_id,
        date_from=period.date_from,
        date_to=period.date_to,
        rows=[SellInRow(**{**r, "name": node_name(r["id"], r["name"])}) for r in rows],
        freshness=freshness,
    )
    if page.file:
        return export_response(SellInRow, response.rows, "primary-vs-secondary", page.fmt)
    return response
