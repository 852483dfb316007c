"""HTTP API of one retailer's page: GET /v1/outlets/{outlet_id}/activity (orders, returns, visits)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, model_validator

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.money import CASES_DOC, LOOSE_DOC, UNITS_PER_CASE_DOC, Priced, in_cases
from query_api.api.params import PeriodDep
from query_api.reads.outlets import activity, has_facts, outlet
from sellthrough_contracts.common import ID_PATTERN
from sellthrough_runtime.dependencies import ConnectionDep
from sellthrough_runtime.problems import ProblemError

# An outlet of the caller's scope (api/caller.py); closed to reps (an outlet's page shows every rep's orders).
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])

OutletId = Annotated[str, Path(pattern=ID_PATTERN, description="The outlet (retailer).")]
ActivityLimit = Annotated[int, Query(ge=1, le=1000, description="At most this many orders, returns and visits each.")]


class OutletInfo(BaseModel):
    outlet_id: str
    name: str | None = Field(description="Null while reference data has not named the outlet.")
    distributor_id: str | None
    distributor_name: str | None
    channel: str | None
    outlet_class: str | None
    lat: float | None
    lon: float | None


class Captured(BaseModel):
    """Where an event came from and when."""

    event_id: UUID
    day: date = Field(description="The business day it counts on.")
    occurred_at: datetime
    recorded_at: datetime | None
    source: str = Field(description="The device or connector that sent it.")


class CapturedAtOutlet(Captured):
    rep_id: str
    lat: float | None
    lon: float | None
    accuracy_m: float | None


class OrderLine(BaseModel):
    sku_id: str
    ordered_units: int
    ordered_value: Decimal
    delivered_units: int
    units_per_case: int | None = Field(default=None, description=UNITS_PER_CASE_DOC)
    ordered_cases: int | None = Field(default=None, description=CASES_DOC.format("ordered_units", "ordered"))
    ordered_loose_units: int | None = Field(default=None, description=LOOSE_DOC.format("ordered_units"))

    @model_validator(mode="after")
    def _split(self) -> "OrderLine":
        self.ordered_cases, self.ordered_loose_units = in_cases(self.ordered_units, self.units_per_case)
        return self


class OutletOrder(CapturedAtOutlet):
    order_id: str
    status: Literal["placed", "delivered", "cancelled"] = Field(
        description="cancelled: off net sales; a cancellation of a delivered order does not count."
    )
    cancelled_at: datetime | None
    cancel_reason: str | None
    ordered_value: Decimal
    lines: list[OrderLine]


class ReturnLine(BaseModel):
    sku_id: str
    units: int
    value: Decimal = Field(description="At the SKU's list price.")


class OutletReturn(Captured):
    return_id: str
    reason: str
    value: Decimal
    lines: list[ReturnLine]


class OutletVisit(CapturedAtOutlet):
    visit_id: str
    productive: bool
    no_order_reason: str | None


class OutletActivity(Priced):
    outlet: OutletInfo
    date_from: date
    date_to: date
    orders: list[OutletOrder] = Field(description="Newest first.")
    returns: list[OutletReturn] = Field(description="Returns from this retailer, newest first.")
    visits: list[OutletVisit] = Field(description="Newest first.")


@router.get(
    "/outlets/{outlet_id}/activity",
    response_model=OutletActivity,
    operation_id="get_outlet_activity",
    tags=["kpis"],
    responses={404: {"description": "No outlet with this id is known"}},
)
async def get_outlet_activity(
    scope: CallerScope, conn: ConnectionDep, outlet_id: OutletId, period: PeriodDep, limit: ActivityLimit = 100
) -> OutletActivity:
    """One retailer's orders (with lines, cancellation and deliveries), returns and visits, for its page."""
    # Before the 404: outside the scope, whether an outlet exists is not the caller's to know.
    await scope.require_outlet(conn, outlet_id)
    info = await outlet(conn, outlet_id)
    if info is None and not await has_facts(conn, outlet_id):
        raise ProblemError(404, "unknown-outlet", f"No outlet '{outlet_id}' is known.")
    orders, returns, visits = await activity(conn, outlet_id, period.date_from, period.date_to, limit)
    return OutletActivity(
        outlet=_info(outlet_id, info),
        date_from=period.date_from,
        date_to=period.date_to,
        orders=[_order(r) for r in orders],
        returns=[OutletReturn(**dict(r)) for r in returns],
        visits=[OutletVisit(**dict(r)) for r in visits],
    )


def _info(outlet_id: str, record: object) -> OutletInfo:
    if record is None:
        return OutletInfo(
            outlet_id=outlet_id,
            name=None,
            distributor_id=None,
            distributor_name=None,
            channel=None,
            outlet_class=None,
            lat=None,
            lon=None,
        )
    return OutletInfo(**dict(record))  # type: ignore[call-overload]


def _order(record: object) -> OutletOrder:
    row = dict(record)  # type: ignore[call-overload]
    cancelled, delivered = row.pop("cancelled"), row.pop("delivered")
    row.pop("distributor_id")
    return OutletOrder(**row, status="cancelled" if cancelled else "delivered" if delivered else "placed")
