"""HTTP API of stock turn: GET /v1/stock/turn per distributor and SKU (figures/stock_turn.py says how)."""

from datetime import date

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import EXPORT_RESPONSES, Format, export_response
from query_api.api.params import PeriodDep, ReadableDistributor, Sku
from query_api.figures.stock_turn import stock_turn
from query_api.reads.freshness import Freshness, projection_freshness
from query_api.reads.reconciliation import reconcile
from sellthrough_runtime.costly_reads import costly_read
from sellthrough_runtime.dependencies import ContextDep

# Narrowed to the caller's scope (api/caller.py): the distributors it holds; closed to reps.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])



class TurnFigures(BaseModel):
    opening: int = Field(description="Book stock at the start of the period, in units.")
    closing: int = Field(description="Book stock at the end of the period, in units.")
    average_stock: float = Field(description="(opening + closing) / 2.")
    units_out: int = Field(description="Net secondary units that left the distributor in the period.")
    stock_turn: float | None = Field(description="units_out / average_stock; null without stock.")
    days_of_inventory: float | None = Field(
        description="Days the average stock lasts at the period's pace: days x average_stock / units_out; null "
        "without sales."
    )


class TurnRow(TurnFigures):
    distributor_id: str
    sku_id: str


class StockTurnResponse(BaseModel):
    date_from: date
    date_to: date
    days: int
    rows: list[TurnRow] = Field(description="Positions with stock or sales in the period, by distributor and SKU.")
    total: TurnFigures = Field(description="Over every position listed: units summed, then the ratios.")
    freshness: Freshness = Field(description="Of the stock ledger's positions.")


def _figures(opening: int, closing: int, units_out: int, days: int) -> TurnFigures:
    turn = stock_turn(opening, closing, units_out, days)
    return TurnFigures(
        opening=opening,
        closing=closing,
        average_stock=turn.average_stock,
        units_out=units_out,
        stock_turn=turn.stock_turn,
        days_of_inventory=turn.days_of_inventory,
    )


@router.get(
    "/stock/turn",
    response_model=StockTurnResponse,
    operation_id="get_stock_turn",
    tags=["stock"],
    responses=EXPORT_RESPONSES,
)
@costly_read("stock-turn", cache=False)  # the reconciliation's statement: each position's book at both ends
async def get_stock_turn(
    scope: CallerScope,
    distributor_id: ReadableDistributor,
    context: ContextDep,
    period: PeriodDep,
    sku_id: Sku = None,
    fmt: Format = "json",
) -> StockTurnResponse | Response:
    """Stock turn and days of inventory per distributor and SKU over a period: secondary units out against the
    average of the opening and closing book stock."""
    zone = context.settings.zone
    date_from, date_to = period.date_from, period.date_to
    days = (date_to - date_from).days + 1
    start, end = period.instants(zone)
    async with context.pool.acquire() as conn:
        positions = await reconcile(conn, start, end, distributor_id, sku_id)
        freshness = await projection_freshness(conn, "stock_positions")
    listed = [
        p
        for p in positions
        if scope.holds_distributor(p.distributor_id) and (p.opening or p.closing or p.secondary_out)
    ]
    rows = [
        TurnRow(
            distributor_id=p.distributor_id,
            sku_id=p.sku_id,
            **_figures(p.opening, p.closing, p.secondary_out, days).model_dump(),
        )
        for p in listed
    ]
    if fmt != "json":
        return export_response(TurnRow, rows, "stock-turn", fmt)
    return StockTurnResponse(
        date_from=date_from,
        date_to=date_to,
        days=days,
        rows=rows,
        total=_figures(
            sum(p.opening for p in listed), sum(p.closing for p in listed), sum(p.secondary_out for p in listed), days
        ),
        freshness=freshness,
    )
