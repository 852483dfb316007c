"""`GET /v1/whoami`: who the caller's token says it is. Lets a device, a connector or an operator check a token
(role, subject, device, scope) without trying a write, and shows what an OIDC token's claims were mapped to."""

from fastapi import APIRouter
from pydantic import BaseModel

from sellthrough_runtime.auth import CurrentPrincipal


class WhoAmI(BaseModel):
    role: str
    subject: str
    device_id: str | None
    distributors: list[str]
    geo_ids: list[str]


router = APIRouter(prefix="/v1", tags=["auth"])


@router.get("/whoami", operation_id="whoami", response_model=WhoAmI)
async def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        role=principal.role.value,
        subject=principal.subject,
        device_id=principal.device_id,
        distributors=sorted(principal.distributors),
        geo_ids=sorted(principal.geo_ids),
    )
