"""The Monday review pack: last week's primary vs secondary, top and bottom regions, overstock, scheme ROI and
field compliance, for one scope. Every figure comes from the reads the API answers with (reads/, figures/), called
with the same filters, so the pack shows what GET /v1/kpis, /v1/primary-vs-secondary, /v1/alerts, /v1/schemes and
/v1/field/geo-verification show for that week and scope."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import BaseModel, Field

from query_api.api.caller import Rank, Scope
from query_api.figures.kpis import figures, sum_measures
from query_api.figures.scheme_lift import lift
from query_api.reads.geo import ShareBy, verified_shares
from query_api.reads.kpis import KpiFilter, kpi_measures
from query_api.reads.sales import Level
from query_api.reads.schemes import lift_inputs, scheme_figures
from query_api.reads.stock import StockFilter, StockLevel, alert_counts, alert_list, primary_vs_secondary

TOP_N = 5
SCHEMES_LISTED = 10


class RegionSales(BaseModel):
    id: str | None
    name: str | None
    value: Decimal
    previous_value: Decimal
    value_change_pct: float | None


class SellIn(BaseModel):
    id: str | None
    name: str | None
    primary_value: Decimal
    secondary_value: Decimal
    primary_units: int
    secondary_units: int
    sell_in_per_sell_out: float | None


class Overstock(BaseModel):
    distributor_id: str
    distributor_name: str | None
    sku_id: str
    sku_name: str | None
    on_hand: int
    days_of_cover: float | None


class SchemeRoi(BaseModel):
    scheme_id: str
    name: str
    cost: Decimal
    incremental_units: float | None = Field(description="Lift over comparable outlets; null without enough data.")
    cost_per_incremental_unit: Decimal | None
    approved: Decimal
    over_claim: Decimal


class FieldCompliance(BaseModel):
    id: str | None = Field(description="The region (or distributor, for a distributor's pack).")
    captures: int
    on_site: int
    verified_share: float


class ReviewPack(BaseModel):
    date_from: date
    date_to: date
    level: str = Field(description="The level of the region rows: region, or distributor for a distributor's pack.")
    secondary_value: Decimal
    previous_secondary_value: Decimal
    secondary_change_pct: float | None
    primary_value: Decimal
    primary_vs_secondary: list[SellIn]
    top_regions: list[RegionSales]
    bottom_regions: list[RegionSales]
    overstock_alerts: int
    overstock: list[Overstock] = Field(description="The overstock alerts raised now, longest cover first.")
    schemes: list[SchemeRoi] = Field(description="National packs only (schemes are read nationally).")
    field: list[FieldCompliance]
    field_verified_share: float | None


def review_week(today: date) -> tuple[date, date]:
    """The last whole Monday-Sunday week before `today`."""
    last_sunday = today - timedelta(days=today.weekday() + 1)
    return last_sunday - timedelta(days=6), last_sunday


@dataclass(frozen=True)
class PackInputs:
    scope: Scope
    date_from: date
    date_to: date
    zone: ZoneInfo
    business_timezone: str
    today: date
    """Scheme lift is estimated as of today, as GET /v1/schemes/{id} does."""

    @property
    def level(self) -> Level:
        return Level.REGION if self.scope.top <= Rank.REGION else Level.DISTRIBUTOR


async def _sales(conn: asyncpg.Connection, i: PackInputs) -> tuple[list[RegionSales], dict[str, Decimal]]:
    f = KpiFilter(i.date_from, i.date_to, None, None, None, distributors=i.scope.distributor_list)
    nodes = await kpi_measures(conn, i.level, None, f, i.date_from, with_primary=True, distributors=f.distributors)
    total = sum_measures([m for _, m in nodes.values()])
    rows = []
    for node_id, (name, measures) in nodes.items():
        k = figures(measures, total.get("value", Decimal(0)), True)
        rows.append(
            RegionSales(
                id=node_id,
                name=name,
                value=k.value,
                previous_value=k.previous_value,
                value_change_pct=k.value_change_pct,
            )
        )
    rows.sort(key=lambda r: (-r.value, r.id is None, r.id or ""))
    return rows, total


async def _sell_in(conn: asyncpg.Connection, i: PackInputs) -> list[SellIn]:
    f = StockFilter(StockLevel(i.level.value), None, None, None, 500, i.scope.distributor_list)
    rows = await primary_vs_secondary(conn, f, i.date_from, i.date_to)
    return [SellIn(**{k: r[k] for k in SellIn.model_fields}) for r in rows]


async def _overstock(conn: asyncpg.Connection, i: PackInputs) -> tuple[int, list[Overstock]]:
    f = StockFilter(StockLevel.NATIONAL, None, None, None, TOP_N * 2, i.scope.distributor_list)
    counts = await alert_counts(conn, f, "overstock")
    listed = await alert_list(conn, f, "overstock", TOP_N * 2)
    total = sum(int(r["overstock"]) for r in counts)
    return total, [Overstock(**{k: r[k] for k in Overstock.model_fields}) for r in listed]


async def _schemes(conn: asyncpg.Connection, i: PackInputs) -> list[SchemeRoi]:
    if not i.scope.national:
        return []
    out = []
    for row in await scheme_figures(conn, None, SCHEMES_LISTED):
        cost = row["discount_value"] + row["free_units_cost"]
        inputs = await lift_inputs(conn, row["scheme_id"], i.today, i.business_timezone)
        result = lift(inputs, cost) if inputs is not None else None
        out.append(
            SchemeRoi(
                scheme_id=row["scheme_id"],
                name=row["name"],
                cost=cost,
                incremental_units=result.incremental_units if result else None,
                cost_per_incremental_unit=result.cost_per_incremental_unit if result else None,
                approved=row["approved"],
                over_claim=row["over_claim"],
            )
        )
    return out


async def _field(conn: asyncpg.Connection, i: PackInputs) -> list[FieldCompliance]:
    since = datetime.combine(i.date_from, time(0), tzinfo=i.zone).astimezone(UTC)
    by: ShareBy = "region" if i.level is Level.REGION else "distributor"
    records = await verified_shares(conn, by, since, None, None, i.scope.distributor_list)
    return [
        FieldCompliance(
            id=r["key"],
            captures=r["captures"],
            on_site=r["on_site"],
            verified_share=round(r["on_site"] / r["captures"], 4),
        )
        for r in records
    ]


async def review_pack(conn: asyncpg.Connection, i: PackInputs) -> ReviewPack:
    regions, total = await _sales(conn, i)
    overstock_count, overstock = await _overstock(conn, i)
    field = await _field(conn, i)
    captures = sum(r.captures for r in field)
    value, previous = total.get("value", Decimal(0)), total.get("previous_value", Decimal(0))
    k = figures(total, value, True)
    return ReviewPack(
        date_from=i.date_from,
        date_to=i.date_to,
        level=i.level.value,
        secondary_value=value,
        previous_secondary_value=previous,
        secondary_change_pct=k.value_change_pct,
        primary_value=k.primary_value or Decimal(0),
        primary_vs_secondary=await _sell_in(conn, i),
        top_regions=regions[:TOP_N],
        bottom_regions=list(reversed(regions[-TOP_N:])) if len(regions) > TOP_N else list(reversed(regions)),
        overstock_alerts=overstock_count,
        overstock=overstock,
        schemes=await _schemes(conn, i),
        field=field,
        field_verified_share=round(sum(r.on_site for r in field) / captures, 4) if captures else None,
    )
