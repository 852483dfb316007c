"""Query parameters shared by the read endpoints, validated the same way everywhere."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query

from sellthrough_contracts.common import ID_PATTERN, NAME_PATTERN
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

Zone = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales under this zone.")]
Region = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales under this region.")]
Distributor = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales under this distributor.")]
Outlet = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only sales of this outlet.")]
Rep = Annotated[str | None, Query(alias="rep", pattern=ID_PATTERN, description="Only this rep's orders.")]


@dataclass(frozen=True)
class Cell:
    """The keys of a drill-down cell beside its days: any of geography, SKU or brand, and rep."""

    zone: str | None = None
    region: str | None = None
    distributor: str | None = None
    outlet: str | None = None
    sku: str | None = None
    brand: str | None = None
    rep: str | None = None
    distributors: tuple[str, ...] | None = None
    """The caller's scope (scope.py): only sales of these distributors' outlets; None: national."""


def cell_keys(
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
