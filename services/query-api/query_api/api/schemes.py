"""HTTP API over scheme performance, lift and claim assessments."""

from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import Format, export_response
from query_api.api.money import Priced
from query_api.api.params import today_in
from query_api.figures.scheme_lift import GroupSales, LiftReason, lift
from query_api.reads.freshness import Freshness, projection_freshness
from query_api.reads.schemes import claims, leakage, lift_inputs, scheme_figures
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep, SettingsDep
from sellthrough_runtime.problems import ProblemError

# A scheme's figures, lift and leakage are national (every distributor's outlets): analysts and admins only.
# Claims are per distributor and narrowed to the caller's scope (api/caller.py).
router = APIRouter(prefix="/v1")
NATIONAL = [readers(Role.ANALYST, Role.ADMIN)]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
SchemeIdQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this scheme.")]
DistributorIdQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this distributor.")]
Limit = Annotated[int, Query(ge=1, le=5000, description="Rows returned.")]


class SchemeSummary(BaseModel):
    scheme_id: str
    name: str
    benefit_kind: str
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    ended_at: AwareDatetime | None
    total_budget: Decimal | None
    outlets_reached: int = Field(description="Outlets granted a benefit.")
    orders: int = Field(description="Orders granted a benefit.")
    units: int = Field(description="Qualifying units on those orders.")
    discount_value: Decimal
    free_units: int
    free_units_cost: Decimal
    cost: Decimal = Field(description="discount_value + free_units_cost.")
    claims: int
    claimed: Decimal
    approved: Decimal
    over_claim: Decimal = Field(description="Leakage: claimed beyond what orders earned.")


class SchemesResponse(Priced):
    schemes: list[SchemeSummary]
    freshness: Freshness


class GroupFigures(BaseModel):
    outlets: int = Field(description="Outlets in the group (for the control group, its size).")
    during_units: int
    pre_units: int
    during_value: Decimal
    pre_value: Decimal


class LiftFigures(BaseModel):
    period_from: date
    period_to: date
    pre_period_from: date
    days: int
    targeted: GroupFigures
    control: GroupFigures = Field(description="Untargeted outlets of the same channel and class.")
    reason: LiftReason | None = Field(
        description="Why there is no estimate (expected, incremental and cost per unit are null): "
        "`insufficient_history`, the pre-period is not wholly within recorded sales history (see the days "
        "covered vs needed); `insufficient_baseline`, the targeted or control group sold none of the scheme's "
        "products in the pre-period. Null when the estimate is given."
    )
    pre_period_days_covered: int = Field(description="Pre-period days on or after the first recorded sale.")
    pre_period_days_needed: int = Field(description="Days in the pre-period (as many as in the scheme period).")
    targeted_growth_pct: float | None = Field(description="Targeted outlets vs their own pre-period.")
    control_growth_pct: float | None
    expected_units: float | None = Field(description="Targeted pre-period units x the control group's growth.")
    incremental_units: float | None
    cost_per_incremental_unit: Decimal | None


class LeakageRow(BaseModel):
    distributor_id: str
    claims: int
    claimed: Decimal
    entitled: Decimal
    approved: Decimal
    over_claim: Decimal


class SchemeDetail(SchemeSummary, Priced):
    lift: LiftFigures | None = Field(description="Null until the scheme has run a day.")
    leakage: list[LeakageRow] = Field(description="Over-claims by distributor, largest first.")


class ClaimLine(BaseModel):
    outlet_id: str
    order_id: str | None
    claimed: Decimal
    entitled: Decimal
    approved: Decimal
    over_claim: Decimal
    reasons: list[str]


class ClaimSubmissionRow(BaseModel):
    revision: int
    event_id: UUID
    occurred_at: datetime
    claimed_amount: Decimal
    current: bool


class ClaimRow(BaseModel):
    claim_id: str
    scheme_id: str
    distributor_id: str
    claimed: Decimal
    entitled: Decimal
    approved: Decimal
    over_claim: Decimal
    reasons: list[str]
    lines: list[ClaimLine]
    assessed_at: datetime
    revision: int = Field(
        description="How many times the claim was assessed (raised by resubmission or re-allocation)."
    )
    claim_revision: int = Field(description="The submission assessed: 1 for the first, 2 for a resubmission, ...")
    submissions: list[ClaimSubmissionRow] = Field(
        description="Every submission of the claim id, in the order received; `current` marks the one assessed "
        "(the latest by occurred_at, so one received late never replaces a newer one)."
    )


class ClaimsResponse(Priced):
    claims: list[ClaimRow]
    freshness: Freshness


def _summary(row: Any) -> dict[str, Any]:
    return {
        "scheme_id": row["scheme_id"],
        "name": row["name"],
        "benefit_kind": row["benefit_kind"],
        "valid_from": row["valid_from"],
        "valid_to": row["valid_to"],
        "ended_at": row["ended_at"],
        "total_budget": row["total_budget"],
        "outlets_reached": row["outlets"],
        "orders": row["orders"],
        "units": row["units"],
        "discount_value": row["discount_value"],
        "free_units": row["free_units"],
        "free_units_cost": row["free_units_cost"],
        "cost": row["discount_value"] + row["free_units_cost"],
        "claims": row["claims"],
        "claimed": row["claimed"],
        "approved": row["approved"],
        "over_claim": row["over_claim"],
    }


def _group(sales: GroupSales) -> GroupFigures:
    return GroupFigures(**asdict(sales))


@router.get(
    "/schemes", response_model=SchemesResponse, operation_id="list_schemes", tags=["schemes"], dependencies=NATIONAL
)
async def list_schemes(conn: ConnectionDep, limit: Limit = 500, fmt: Format = "json") -> SchemesResponse | Response:
    """Every scheme known, newest first, with reach, cost and claim leakage."""
    rows = await scheme_figures(conn, None, limit)
    freshness = await projection_freshness(conn, "schemes")
    response = SchemesResponse(schemes=[SchemeSummary(**_summary(row)) for row in rows], freshness=freshness)
    if fmt != "json":
        return export_response(SchemeSummary, response.schemes, "schemes", fmt)
    return response


@router.get(
    "/schemes/{scheme_id}",
    response_model=SchemeDetail,
    operation_id="get_scheme",
    tags=["schemes"],
    dependencies=NATIONAL,
)
async def get_scheme(
    conn: ConnectionDep,
    settings: SettingsDep,
    scheme_id: Annotated[str, Path(pattern=ID_PATTERN, description="The scheme.")],
) -> SchemeDetail:
    """One scheme's figures, its lift against its pre-period and comparable outlets, and leakage."""
    rows = await scheme_figures(conn, scheme_id, 1)
    if not rows:
        raise ProblemError(404, "unknown-scheme", f"No scheme '{scheme_id}' is known.")
    inputs = await lift_inputs(conn, scheme_id, today_in(settings.zone), settings.business_timezone)
    leaks = await leakage(conn, scheme_id)
    summary = _summary(rows[0])
    figures = None
    if inputs is not None:
        result = lift(inputs, summary["cost"])
        figures = LiftFigures(
            period_from=inputs.first_day,
            period_to=inputs.last_day,
            pre_period_from=inputs.pre_from,
            days=inputs.days,
            targeted=_group(inputs.targeted),
            control=_group(inputs.control),
            **asdict(result),
        )
    return SchemeDetail(
        **summary, lift=figures, leakage=[LeakageRow(**{k: r[k] for k in LeakageRow.model_fields}) for r in leaks]
    )


@router.get(
    "/claims",
    response_model=ClaimsResponse,
    operation_id="list_claims",
    tags=["schemes"],
    dependencies=[readers(*READERS)],
)
async def list_claims(
    scope: CallerScope,
    conn: ConnectionDep,
    scheme_id: SchemeIdQuery = None,
    distributor_id: DistributorIdQuery = None,
    limit: Limit = 500,
) -> ClaimsResponse:
    """Claim assessments (newest of each claim), largest over-claim first, each with the history of its
    submissions: a claim id submitted again is a new revision, never a silent replace."""
    if distributor_id is not None:
        scope.require_distributor(distributor_id)
    rows = await claims(conn, scheme_id, distributor_id, limit, scope.distributor_list)
    freshness = await projection_freshness(conn, "schemes")
    return ClaimsResponse(
        freshness=freshness,
        claims=[
            ClaimRow(
                **{k: row[k] for k in ClaimRow.model_fields if k not in ("lines", "submissions")},
                lines=[ClaimLine(**line) for line in row["lines"]],
                submissions=[ClaimSubmissionRow(**submission) for submission in row["submissions"]],
            )
            for row in rows
        ],
    )
