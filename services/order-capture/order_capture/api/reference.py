"""GET /v1/reference/status: how many masters order-capture knows."""

from fastapi import APIRouter
from pydantic import BaseModel

from sellthrough_runtime.auth import Role, require_roles
from sellthrough_runtime.dependencies import ConnectionDep

router = APIRouter(prefix="/v1")


class MastersStatus(BaseModel):
    distributors: int
    outlets: int
    skus: int
    reps: int


@router.get(
    "/reference/status",
    response_model=MastersStatus,
    operation_id="reference_status",
    tags=["reference"],
    # National counts of masters: for whoever loads or back-fills them (admin, connector) and analysts; not for a
    # rep, regional manager or distributor, whose reads stop at their own territory (README, "Roles and scopes").
    dependencies=[require_roles(Role.ADMIN, Role.ANALYST, Role.CONNECTOR)],
)
async def reference_status(conn: ConnectionDep) -> MastersStatus:
    """How many masters this service knows, to check reference data has arrived before posting orders."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM known_distributors) AS distributors, (SELECT count(*) FROM known_outlets) "
        "AS outlets, (SELECT count(*) FROM known_skus) AS skus, (SELECT count(*) FROM known_reps) AS reps"
    )
    return MastersStatus(**dict(row))
