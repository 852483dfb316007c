"""Query parameters shared by the read endpoints, validated the same way everywhere."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated

from fastapi import Depends, Query
from pydantic import StringConstraints

from query_api.api.caller import CallerScope
from query_api.api.exports import ExportFormat, Format
from query_api.reads.cell import Cell
from query_api.reads.segment import Segment
from sellthrough_contracts.common import ID_PATTERN, NAME_PATTERN
from sellthrough_runtime.dependencies import SettingsDep
from sellthrough_runtime.problems import ProblemError

MAX_RANGE_DAYS = 366
UNASSIGNED = "Unassigned (reference data not received yet)"

DateFrom = Annotated[
    date | None, Query(alias="from", description="First day, inclusive (default: 29 days before `to`).")
]
DateTo = Annotated[date | None, Query(alias="to", description="Last day, inclusive (default: today).")]
Brand = Annotated[str | None, Query(max_length=200, pattern=NAME_PATTERN, description="Only this brand.")]
Sku = Annotated[str | None, Query(alias="sku", pattern=ID_PATTERN, description="Only this SKU.")]
ParentId = Annotated[
    str | None,
    Query(pattern=ID_PATTERN, description="Only nodes under this parent (the level above `level`)."),
]
Limit = Annotated[int, Query(ge=1, le=5000, description="Rows returned, largest first.")]
Within = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="Only under this zone, region, distributor or outlet id.")
]

Zone = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales under this zone.")]
Region = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales under this region.")]
Distributor = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales under this distributor.")]
Outlet = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales of this outlet.")]
Rep = Annotated[str | None, Query(alias="rep", pattern=ID_PATTERN, description="Only this rep's orders.")]
Days = Annotated[int, Query(ge=1, le=366, description="The window: captures accepted in this many days up to now.")]


async def cell_keys(
    zone: Zone = None,
    region: Region = None,
    distributor: Distributor = None,
    outlet: Outlet = None,
    sku_id: Sku = None,
    brand: Brand = None,
    rep: Rep = None,
) -> Cell:
    return Cell(zone, region, distributor, outlet, sku_id, brand, rep)


CellKeys = Annotated[Cell, Depends(cell_keys)]
"""The query parameters that select a cell, as one dependency."""


def date_range(date_from: date | None, date_to: date | None, today: date) -> tuple[date, date]:
    """Defaults to the 30 days ending today; refuses reversed or over-long ranges with a 422 problem."""
    date_to = date_to or today
    try:
        date_from = date_from or date_to - timedelta(days=29)
    except OverflowError:  # `to` in the first days of year 1: no default `from` exists
        raise ProblemError(422, "invalid-range", f"'to' ({date_to}) is too early; give 'from' as well.") from None
    if date_from > date_to:
        raise ProblemError(422, "invalid-range", f"'from' ({date_from}) is after 'to' ({date_to}).")
    if (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise ProblemError(422, "invalid-range", f"A range covers at most {MAX_RANGE_DAYS} days.")
    return date_from, date_to


def today_in(zone: object) -> date:
    return datetime.now(zone).date()  # type: ignore[arg-type]


def node_name(node_id: str | None, name: str | None) -> str | None:
    return name if node_id is not None else UNASSIGNED


@dataclass(frozen=True)
class Period:
    """The days a read covers: `from` and `to` resolved against today in the business timezone."""

    date_from: date
    date_to: date

    def instants(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """The period as instants in `zone`: the start of its first day and the start of the day after its last."""
        return datetime.combine(self.date_from, time(0), zone), datetime.combine(
            self.date_to + timedelta(days=1), time(0), zone
        )


async def period(settings: SettingsDep, date_from: DateFrom = None, date_to: DateTo = None) -> Period:
    return Period(*date_range(date_from, date_to, today_in(settings.zone)))


PeriodDep = Annotated[Period, Depends(period)]
"""`from` and `to` as one dependency: defaulted, and refused (422) when reversed or too long."""

DistributorId = Annotated[
    str | None, Query(alias="distributor_id", pattern=ID_PATTERN, description="Only this distributor.")
]


async def readable_distributor(scope: CallerScope, distributor_id: DistributorId = None) -> str | None:
    """Listed ahead of the period in a route's parameters: a distributor outside the scope is a 403 first."""
    if distributor_id is not None:
        scope.require_distributor(distributor_id)
    return distributor_id


ReadableDistributor = Annotated[str | None, Depends(readable_distributor)]
"""`distributor_id`, checked against the caller's scope (403 outside it)."""


@dataclass(frozen=True)
class SalesFilter:
    """The period and product filter most sales reads share (`from`, `to`, `brand`, `sku`)."""

    date_from: date
    date_to: date
    brand: str | None
    sku_id: str | None


async def sales_filter(period: PeriodDep, brand: Brand = None, sku_id: Sku = None) -> SalesFilter:
    return SalesFilter(period.date_from, period.date_to, brand, sku_id)


SalesFilterDep = Annotated[SalesFilter, Depends(sales_filter)]


@dataclass(frozen=True)
class Listing:
    """How many rows, largest first, and in which format: the tail of most table reads."""

    limit: int
    fmt: ExportFormat

    @property
    def file(self) -> bool:
        """A file (csv, parquet, xlsx) rather than JSON: api/exports encodes the table."""
        return self.fmt != "json"

    @property
    def csv(self) -> bool:
        """The name `file` had before Parquet and Excel, for routes written then."""
        return self.file


async def listing(limit: Limit = 500, fmt: Format = "json") -> Listing:
    return Listing(limit, fmt)


ListingDep = Annotated[Listing, Depends(listing)]


@dataclass(frozen=True)
class Window:
    """A read over the last `days` days up to now (field verification reads), rather than business days."""

    days: int
    since: datetime


async def window(days: Days = 30) -> Window:
    return Window(days, datetime.now(UTC) - timedelta(days=days))


WindowDep = Annotated[Window, Depends(window)]


SegmentValue = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Channels = Annotated[
    list[SegmentValue] | None,
    Query(alias="channel", max_length=50, description="Only outlets of this trade channel; repeat for several."),
]
OutletClasses = Annotated[
    list[SegmentValue] | None,
    Query(alias="outlet_class", max_length=50, description="Only outlets of this class; repeat for several."),
]


async def segment(channels: Channels = None, outlet_classes: OutletClasses = None) -> Segment:
    return Segment(channels or None, outlet_classes or None)


SegmentDep = Annotated[Segment, Depends(segment)]
"""`channel` and `outlet_class`, each repeatable, as one dependency."""
