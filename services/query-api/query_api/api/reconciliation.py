"""HTTP API of the stock reconciliation: GET /v1/reconciliation per distributor or per distributor and SKU."""

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import EXPORT_RESPONSES, Format, export_response
from query_api.api.params import PeriodDep, ReadableDistributor, Sku
from query_api.reads.freshness import Freshness, projection_freshness
from query_api.reads.reconciliation import PositionReconciliation, reconcile
from sellthrough_runtime.costly_reads import costly_read
from sellthrough_runtime.dependencies import ContextDep

# Narrowed to the caller's scope (api/caller.py): the distributors it holds; closed to reps.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])

By = Annotated[
    Literal["distributor", "sku"],
    Query(description="One row per distributor (its SKUs' units summed) or per distributor and SKU."),
]


class Reconciliation(BaseModel):
    """Units. closing = opening + primary_in - secondary_out + returns_in - returns_out + adjustments +
    count_variance."""

    opening: int = Field(description="Book stock at the start of the period.")
    primary_in: int = Field(description="Primary invoices (manufacturer -> distributor).")
    secondary_out: int = Field(
        description="Net secondary sales leaving the distributor: open orders at capture, delivered units at "
        "delivery; cancelled orders never leave."
    )
    returns_in: int = Field(description="Returns from retailers.")
    returns_out: int = Field(description="Returns to the company.")
    adjustments: int = Field(description="Stock adjustments, signed.")
    count_variance: int = Field(description="What counts in the period corrected (counted - book at the count).")
    closing: int = Field(description="Book stock at the end of the period.")
    counted: int | None = Field(description="The latest count in the period (null: no count).")
    book_now: int = Field(description="Book stock with every event applied, as query-api computes it.")
    ledger_on_hand: int = Field(description="On-hand as the stock ledger reports it now.")
    ledger_difference: int = Field(description="book_now - ledger_on_hand: zero unless a service is wrong.")


class ReconciliationRow(Reconciliation):
    distributor_id: str
    sku_id: str | None = Field(description="Null when rows are per distributor.")


class ReconciliationResponse(BaseModel):
    date_from: date
    date_to: date
    by: str
    rows: list[ReconciliationRow]
    total: Reconciliation
    positions: int = Field(description="Distributor x SKU positions reconciled.")
    positions_differing: int = Field(description="Positions whose book differs from the stock ledger's on-hand.")
    freshness: Freshness = Field(description="Of the stock ledger's positions compared against.")


def _summed(positions: Iterable[PositionReconciliation]) -> Reconciliation:
    items = list(positions)
    counted = [p.counted for p in items if p.counted is not None]
    return Reconciliation(
        opening=sum(p.opening for p in items),
        primary_in=sum(p.primary_in for p in items),
        secondary_out=sum(p.secondary_out for p in items),
        returns_in=sum(p.returns_in for p in items),
        returns_out=sum(p.returns_out for p in items),
        adjustments=sum(p.adjustments for p in items),
        count_variance=sum(p.count_variance for p in items),
        closing=sum(p.closing for p in items),
        counted=sum(counted) if counted else None,
        book_now=sum(p.book_now for p in items),
        ledger_on_hand=sum(p.ledger_on_hand or 0 for p in items),
        ledger_difference=sum(p.ledger_difference for p in items),
    )


@router.get(
    "/reconciliation",
    response_model=ReconciliationResponse,
    operation_id="get_reconciliation",
    tags=["stock"],
    responses=EXPORT_RESPONSES,
)
@costly_read("reconciliation", cache=False)  # ~0.7 s for the demo brand; polled, so shared and bounded only
async def get_reconciliation(
    scope: CallerScope,
    distributor_id: ReadableDistributor,
    context: ContextDep,
    period: PeriodDep,
    sku_id: Sku = None,
    by: By = "distributor",
    fmt: Format = "json",
) -> ReconciliationResponse | Response:
    """Opening stock + primary in - net secondary out +/- returns and adjustments = book closing, per distributor
    (or SKU) for a period, with counts and their variance; and the book tied out against the stock ledger."""
    zone = context.settings.zone
    date_from, date_to = period.date_from, period.date_to
    # The pool, not ConnectionDep: identical requests share one computation (costly_read), so only it connects.
    start, end = period.instants(zone)
    async with context.pool.acquire() as conn:
        everywhere = await reconcile(conn, start, end, distributor_id, sku_id)
        freshness = await projection_freshness(conn, "stock_positions")
    # Every position is returned (no limit), so narrowing them here leaves totals over the scope only.
    positions = [p for p in everywhere if scope.holds_distributor(p.distributor_id)]
    if by == "sku":
        rows = [
            ReconciliationRow(distributor_id=p.distributor_id, sku_id=p.sku_id, **_summed([p]).model_dump())
            for p in positions
        ]
    else:
        distributors = sorted({p.distributor_id for p in positions})
        rows = [
            ReconciliationRow(
                distributor_id=d, sku_id=None, **_summed(p for p in positions if p.distributor_id == d).model_dump()
            )
            for d in distributors
        ]
    response = ReconciliationResponse(
        date_from=date_from,
        date_to=date_to,
        by=by,
        rows=rows,
        total=_summed(positions),
        positions=len(positions),
        positions_differing=sum(p.ledger_difference != 0 for p in positions),
        freshness=freshness,
    )
    if fmt != "json":
        return export_response(ReconciliationRow, response.rows, "reconciliation", fmt)
    return response
