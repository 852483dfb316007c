"""GET /v1/scope: whose data a token reads, so the dashboard starts at the caller's root and says whose it is."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, Rank
from query_api.reads.scope import root_names
from sellthrough_runtime.dependencies import ContextDep

router = APIRouter(prefix="/v1")

TopLevel = Literal["national", "zone", "region", "distributor"]
TOP_LEVEL: dict[Rank, TopLevel] = {
    Rank.NATIONAL: "national",
    Rank.ZONE: "zone",
    Rank.REGION: "region",
    Rank.DISTRIBUTOR: "distributor",
}


class ScopeRoot(BaseModel):
    id: str
    name: str | None = Field(description="Null while the node is not yet in reference data.")


class ScopeResponse(BaseModel):
    role: str
    subject: str
    national: bool = Field(description="Reads every territory (analyst, admin).")
    top_level: TopLevel | None = Field(
        description="The highest drill level the token reads rows at; null for a role without a territory."
    )
    roots: list[ScopeRoot] = Field(description="The nodes at top_level the token reads: the top of its drill-down.")
    reads_dashboard: bool = Field(description="Whether the dashboard's reads are open to this role.")


@router.get("/scope", response_model=ScopeResponse, operation_id="get_scope", tags=["scope"])
async def get_scope(scope: CallerScope, context: ContextDep) -> ScopeResponse:
    """The caller's own scope (any role: it tells a token only about itself)."""
    role = scope.principal.role
    territorial = role in READERS
    roots: list[ScopeRoot] = []
    if territorial and not scope.national:
        async with context.pool.acquire() as conn:
            names = await root_names(conn, scope.roots)
        roots = [ScopeRoot(id=r, name=names.get(r)) for r in scope.roots]
    return ScopeResponse(
        role=role.value,
        subject=scope.principal.subject,
        national=scope.national,
        top_level=TOP_LEVEL[scope.top] if territorial else None,
        roots=roots,
        reads_dashboard=territorial,
    )
