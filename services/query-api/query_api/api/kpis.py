"""HTTP API of the KPIs: drill-level KPIs, sales breakdowns, outlet rankings, underperforming regions.

Every endpoint answers JSON, or with `format=csv|parquet|xlsx` its table as a file (api/exports).
"""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, RepFilter, readers
from query_api.api.exports import EXPORT_RESPONSES, Format, export_response
from query_api.api.money import Priced
from query_api.api.params import MAX_RANGE_DAYS, ListingDep, ParentId, SalesFilterDep, SegmentDep, Within, node_name
from query_api.figures.kpis import KpiFigures, KpiRow, change_pct, figures, sum_measures
from query_api.reads.freshness import Freshness, read_freshness
from query_api.reads.kpis import (
    KPI_PROJECTIONS,
    KpiFilter,
    kpi_measures,
    node_known,
    outlet_ranking,
    sales_by,
)
from query_api.reads.sales import PARENT_LEVEL, Level, parent_exists
from sellthrough_contracts.topics import TRADE
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep
from sellthrough_runtime.problems import ProblemError

# Narrowed to the caller's scope (api/caller.py); reps too, to their own figures by RepFilter.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS, Role.REP)])


class Dimension(StrEnum):
    BRAND = "brand"
    SKU = "sku"
    REP = "rep"
    DISTRIBUTOR = "distributor"
    REGION = "region"
    CHANNEL = "channel"
    OUTLET_CLASS = "outlet_class"


class Period(Priced):
    date_from: date
    date_to: date
    previous_from: date = Field(description="First day of the previous period of equal length.")
    previous_to: date
    brand: str | None
    sku_id: str | None
    rep_id: str | None
    within: str | None = Field(default=None, description="The zone, region, distributor or outlet the rows are under.")
    channels: list[str] | None = Field(default=None, description="Only outlets of these channels (null: all).")
    outlet_classes: list[str] | None = Field(default=None, description="Only outlets of these classes (null: all).")


class KpiResponse(Period):
    level: Level
    parent_id: str | None
    dormant_days: int
    rows: list[KpiRow] = Field(description="Nodes at `level`, largest secondary value first.")
    total: KpiFigures = Field(description="Over every node under the parent, whatever `limit`.")
    freshness: dict[str, Freshness] = Field(description="Per projection: kpi_sales, kpi_visits, kpi_deliveries.")


class BreakdownRow(BaseModel):
    id: str | None
    name: str | None
    value: Decimal
    units: int
    lines: int
    share_pct: float | None = Field(description="Share of the total value, in %.")
    previous_value: Decimal
    value_change_pct: float | None


class BreakdownResponse(Period):
    dimension: Dimension
    rows: list[BreakdownRow]
    total_value: Decimal
    total_units: int


class RankedOutlet(BaseModel):
    rank: int
    id: str
    name: str | None
    distributor_id: str | None
    value: Decimal
    units: int
    lines: int


class RankingResponse(Period):
    order: Literal["top", "bottom"]
    rows: list[RankedOutlet]


class RegionDecline(BaseModel):
    id: str | None
    name: str | None
    value: Decimal
    previous_value: Decimal
    value_change_pct: float


class UnderperformingResponse(Period):
    threshold_pct: float
    rows: list[RegionDecline] = Field(description="Regions whose value fell by more than threshold_pct, worst first.")


async def kpi_filter(f: SalesFilterDep, rep_id: RepFilter, segment: SegmentDep) -> KpiFilter:
    # The previous period and the dormancy window (each at most MAX_RANGE_DAYS) reach back before `from`.
    if f.date_from - date.min < timedelta(days=MAX_RANGE_DAYS):
        raise ProblemError(422, "invalid-range", "The range, or the period before it, starts before year 1.")
    return KpiFilter(
        f.date_from,
        f.date_to,
        f.brand,
        f.sku_id,
        rep_id,
        channels=segment.channels,
        outlet_classes=segment.outlet_classes,
    )


KpiFilterDep = Annotated[KpiFilter, Depends(kpi_filter)]
"""The shared period and filters (params.SalesFilterDep) with the rep, checked for a previous period."""


async def _scoped(conn: ConnectionDep, f: KpiFilterDep, scope: CallerScope, within: Within = None) -> KpiFilter:
    """`within` checked against the caller's scope (403 outside it); the rows narrowed to the scope either way."""
    f = replace(f, distributors=scope.distributor_list)
    if within is None:
        return f
    await scope.require_any(conn, within)
    if not await node_known(conn, within):
        raise ProblemError(404, "unknown-node", f"No zone, region, distributor or outlet '{within}' is known.")
    return replace(f, within=within)


ScopedFilterDep = Annotated[KpiFilter, Depends(_scoped)]
"""KpiFilterDep under `within`, narrowed to the caller's scope."""


# The scope's level checks run as dependencies listed before the filter, so a caller refused the rows gets its 403
# before any complaint about the period, as it did when they opened the route.
async def _readable_dimension(
    scope: CallerScope, dimension: Annotated[Dimension, Query(description="Break secondary sales down by this.")]
) -> Dimension:
    if dimension in (Dimension.REGION, Dimension.DISTRIBUTOR):
        scope.require_level(dimension.value, None)
    return dimension


async def _reads_regions(scope: CallerScope) -> None:
    scope.require_level("region", None)


def _period_fields(f: KpiFilter) -> dict[str, Any]:
    return {
        "date_from": f.date_from,
        "date_to": f.date_to,
        "previous_from": f.previous_from,
        "previous_to": f.date_from - timedelta(days=1),
        "brand": f.brand,
        "sku_id": f.sku_id,
        "rep_id": f.rep_id,
        "within": f.within,
        "channels": f.channels,
        "outlet_classes": f.outlet_classes,
    }


@router.get("/kpis", response_model=KpiResponse, responses=EXPORT_RESPONSES, operation_id="get_kpis", tags=["kpis"])
async def get_kpis(
    scope: CallerScope,
    conn: ConnectionDep,
    f: KpiFilterDep,
    page: ListingDep,
    level: Annotated[Level, Query(description="Drill level of the rows returned.")] = Level.NATIONAL,
    parent_id: ParentId = None,
    dormant_days: Annotated[
        int,
        Query(ge=1, le=366, description="An outlet without an order in this many days (ending at `to`) is dormant."),
    ] = 30,
) -> KpiResponse | Response:
    """Secondary sales with period-over-period change, primary vs secondary, contribution to the parent, active
    and dormant outlets, lines per call, strike rate and fill rate, per node at one drill level."""
    if parent_id is not None and level in (Level.NATIONAL, Level.ZONE):
        raise ProblemError(422, "invalid-parent", f"Level '{level}' takes no parent_id.")
    scope.require_level(level, parent_id)
    # Primary sales (sell-in) belong to a distributor, not to a rep or an outlet: a rep's token does not see them,
    # nor does a channel or class.
    with_primary = level is not Level.OUTLET and scope.rep is None and not f.segmented
    if parent_id is not None and not await parent_exists(conn, level, parent_id):
        raise ProblemError(404, "unknown-parent", f"No {PARENT_LEVEL[level]} '{parent_id}' is known.")
    dormant_from = f.date_to - timedelta(days=dormant_days - 1)
    nodes = await kpi_measures(
        conn, level, parent_id, f, dormant_from, with_primary=with_primary, distributors=scope.distributor_list
    )
    fresh = {p: await read_freshness(conn, p, [TRADE.name]) for p in KPI_PROJECTIONS}
    total_measures = sum_measures([measures for _, measures in nodes.values()])
    parent_value = total_measures.get("value", Decimal(0))
    rows = [
        KpiRow(id=node_id, name=node_name(node_id, name), **figures(measures, parent_value, with_primary).model_dump())
        for node_id, (name, measures) in nodes.items()
    ]
    rows.sort(key=lambda r: (-r.value, r.id is None, r.id or ""))
    rows = rows[: page.limit]
    if page.file:
        return export_response(KpiRow, rows, "kpis", page.fmt)
    return KpiResponse(
        **_period_fields(f),
        level=level,
        parent_id=parent_id,
        dormant_days=dormant_days,
        rows=rows,
        total=figures(total_measures, parent_value, with_primary),
        freshness=fresh,
    )


@router.get(
    "/sales/by",
    response_model=BreakdownResponse,
    responses=EXPORT_RESPONSES,
    operation_id="get_sales_by",
    tags=["kpis"],
)
async def get_sales_by(
    dimension: Annotated[Dimension, Depends(_readable_dimension)],
    conn: ConnectionDep,
    f: ScopedFilterDep,
    page: ListingDep,
) -> BreakdownResponse | Response:
    """Secondary sales per brand, SKU, rep, distributor, region, outlet channel or outlet class, largest first,
    with the previous period."""
    records = await sales_by(conn, dimension.value, f)
    # Only what moved in the period (a sale, or a return: net can be negative); the previous period's figure is
    # context, not a row of its own.
    current = [r for r in records if r["lines"] or r["units"] or r["value"]]
    total_value = sum((Decimal(r["value"]) for r in current), Decimal(0))
    rows = [
        BreakdownRow(
            id=r["id"],
            name=node_name(r["id"], r["name"]),
            value=r["value"],
            units=int(r["units"]),
            lines=int(r["lines"]),
            share_pct=round(float(r["value"] * 100 / total_value), 2) if total_value else None,
            previous_value=r["previous_value"],
            value_change_pct=change_pct(r["value"], r["previous_value"]),
        )
        for r in current
    ]
    if page.file:
        return export_response(BreakdownRow, rows[: page.limit], f"sales-by-{dimension.value}", page.fmt)
    return BreakdownResponse(
        **_period_fields(f),
        dimension=dimension,
        rows=rows[: page.limit],
        total_value=total_value,
        total_units=sum(r.units for r in rows),
    )


@router.get(
    "/outlets/ranking",
    response_model=RankingResponse,
    responses=EXPORT_RESPONSES,
    operation_id="get_outlet_ranking",
    tags=["kpis"],
)
async def get_outlet_ranking(
    conn: ConnectionDep,
    f: ScopedFilterDep,
    order: Annotated[Literal["top", "bottom"], Query(description="Best or worst sellers first.")] = "top",
    n: Annotated[int, Query(ge=1, le=1000, description="Outlets returned.")] = 10,
    fmt: Format = "json",
) -> RankingResponse | Response:
    """Top or bottom N outlets by secondary value; known outlets that sold nothing count as zero."""
    records = await outlet_ranking(conn, f, order, n)
    rows = [
        RankedOutlet(
            rank=i,
            id=r["id"],
            name=r["name"],
            distributor_id=r["distributor_id"],
            value=r["value"],
            units=int(r["units"]),
            lines=int(r["lines"]),
        )
        for i, r in enumerate(records, start=1)
    ]
    if fmt != "json":
        return export_response(RankedOutlet, rows, f"outlets-{order}", fmt)
    return RankingResponse(**_period_fields(f), order=order, rows=rows)


@router.get(
    "/regions/underperforming",
    response_model=UnderperformingResponse,
    responses=EXPORT_RESPONSES,
    operation_id="get_underperforming_regions",
    tags=["kpis"],
    dependencies=[Depends(_reads_regions)],
)
async def get_underperforming_regions(
    conn: ConnectionDep,
    f: ScopedFilterDep,
    threshold_pct: Annotated[
        float, Query(ge=0, le=100, description="Minimum fall in value against the previous period, in %.")
    ] = 10,
    fmt: Format = "json",
) -> UnderperformingResponse | Response:
    """Regions whose secondary value fell by more than `threshold_pct` against the previous period of equal
    length. Regions without sales in the previous period have no base to fall from and are not listed."""
    records = await sales_by(conn, Dimension.REGION.value, f)
    rows = []
    for r in records:
        change = change_pct(r["value"], r["previous_value"])
        if change is not None and -change > threshold_pct:
            rows.append(
                RegionDecline(
                    id=r["id"],
                    name=node_name(r["id"], r["name"]),
                    value=r["value"],
                    previous_value=r["previous_value"],
                    value_change_pct=change,
                )
            )
    rows.sort(key=lambda row: (row.value_change_pct, row.id or ""))
    if fmt != "json":
        return export_response(RegionDecline, rows, "underperforming-regions", fmt)
    return UnderperformingResponse(**_period_fields(f), threshold_pct=threshold_pct, rows=rows)
