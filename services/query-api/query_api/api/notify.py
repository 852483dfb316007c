"""Admin API of alerts that reach people: subscriptions (create, list, delete) and the webhook deliveries, dead
letters included; plus the review pack (JSON, and the printable page at /dashboard/review) for any reader."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import AnyHttpUrl, BaseModel, Field, model_validator

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.params import today_in
from query_api.notify import subscriptions as subs
from query_api.notify.outbox import deliveries, retry_dead
from query_api.notify.render import review_html
from query_api.notify.review import PackInputs, ReviewPack, review_pack, review_week
from query_api.notify.signing import new_secret
from query_api.notify.subscriptions import AlertKind, Subscription
from sellthrough_contracts.common import ID_PATTERN
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep, SettingsDep
from sellthrough_runtime.problems import ProblemError

ADMIN = [readers(Role.ADMIN)]
router = APIRouter(prefix="/v1", tags=["notify"])
page_router = APIRouter()

SubscriberRole = Literal["analyst", "admin", "regional_manager", "distributor"]
EMAIL_PATTERN = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"


class SubscriptionIn(BaseModel):
    role: SubscriberRole = Field(description="Alerts are those this role reads in the territory (README, Roles).")
    region_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default=[], max_length=100, description="regional_manager: its zones or regions."
    )
    distributor_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default=[], max_length=100, description="distributor: the distributor (exactly one)."
    )
    kinds: list[AlertKind] = Field(
        default=["negative_stock", "stockout_risk", "overstock"], min_length=1, description="Alert kinds sent."
    )
    webhook_url: AnyHttpUrl | None = Field(default=None, description="POSTed one signed JSON body per alert change.")
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)] | None = Field(
        default=None, description="Sent the daily digest and the Monday review pack."
    )

    @model_validator(mode="after")
    def _one_target_and_territory(self) -> "SubscriptionIn":
        if (self.webhook_url is None) == (self.email is None):
            raise ValueError("give exactly one of webhook_url and email")
        if self.role == "regional_manager" and not self.region_ids:
            raise ValueError("a regional_manager subscription names its region_ids")
        if self.role == "distributor" and len(self.distributor_ids) != 1:
            raise ValueError("a distributor subscription names exactly one distributor_ids")
        if self.role in ("analyst", "admin") and (self.region_ids or self.distributor_ids):
            raise ValueError("analyst and admin read nationally: give no region_ids or distributor_ids")
        return self


class SubscriptionOut(BaseModel):
    subscription_id: str
    role: str
    region_ids: list[str]
    distributor_ids: list[str]
    kinds: list[str]
    webhook_url: str | None
    email: str | None
    created_at: datetime

    @classmethod
    def of(cls, s: Subscription) -> "SubscriptionOut":
        return cls(
            subscription_id=s.subscription_id,
            role=s.role.value,
            region_ids=list(s.region_ids),
            distributor_ids=list(s.distributor_ids),
            kinds=list(s.kinds),
            webhook_url=s.webhook_url,
            email=s.email,
            created_at=s.created_at,
        )


class SubscriptionCreated(SubscriptionOut):
    secret: str | None = Field(
        description="The webhook signing secret (README: verifying a webhook). Shown only in this response."
    )


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


DeliveryStatus = Literal["pending", "delivered", "dead"]


class Delivery(BaseModel):
    delivery_id: int
    subscription_id: str
    idempotency_key: str = Field(description="Sent as X-Sellthrough-Delivery; the same on every attempt.")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    last_status: int | None = Field(description="The receiver's last HTTP status; null if it was not reached.")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


SubscriptionId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The subscription.")]


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionCreated,
    operation_id="create_subscription",
    dependencies=ADMIN,
)
async def create_subscription(body: SubscriptionIn, conn: ConnectionDep) -> SubscriptionCreated:
    """Subscribe a webhook or an e-mail address to the alerts a role reads in a territory."""
    webhook = str(body.webhook_url) if body.webhook_url is not None else None
    created = await subs.insert(
        conn,
        Subscription(
            subscription_id=str(uuid.uuid4()),
            role=Role(body.role),
            region_ids=tuple(body.region_ids),
            distributor_ids=tuple(body.distributor_ids),
            kinds=tuple(dict.fromkeys(body.kinds)),
            webhook_url=webhook,
            email=body.email,
            secret=new_secret() if webhook is not None else None,
            created_at=datetime.now(),
        ),
    )
    return SubscriptionCreated(**SubscriptionOut.of(created).model_dump(), secret=created.secret)


@router.get("/subscriptions", response_model=SubscriptionList, operation_id="list_subscriptions", dependencies=ADMIN)
async def list_subscriptions(conn: ConnectionDep) -> SubscriptionList:
    """Every subscription (secrets are not shown again)."""
    return SubscriptionList(subscriptions=[SubscriptionOut.of(s) for s in await subs.all_subscriptions(conn)])


@router.delete(
    "/subscriptions/{subscription_id}", status_code=204, operation_id="delete_subscription", dependencies=ADMIN
)
async def delete_subscription(subscription_id: SubscriptionId, conn: ConnectionDep) -> Response:
    """Remove a subscription and its deliveries, pending ones included."""
    if not await subs.delete(conn, subscription_id):
        raise ProblemError(404, "unknown-subscription", f"No subscription '{subscription_id}'.")
    return Response(status_code=204)


@router.get("/deliveries", response_model=DeliveryList, operation_id="list_deliveries", dependencies=ADMIN)
async def list_deliveries(
    conn: ConnectionDep,
    status: Annotated[DeliveryStatus | None, Query(description="dead: the dead letters, with the last error.")] = None,
    subscription_id: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{36}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """Webhook deliveries, newest first."""
    rows = await deliveries(conn, status, subscription_id, limit)
    return DeliveryList(deliveries=[Delivery(**dict(r)) for r in rows])


@router.post("/deliveries/{delivery_id}/retry", status_code=202, operation_id="retry_delivery", dependencies=ADMIN)
async def retry_delivery(delivery_id: Annotated[int, Path(ge=1)], conn: ConnectionDep) -> Response:
    """Send a dead-lettered delivery again (its attempts start over), e.g. once the receiver is fixed."""
    if not await retry_dead(conn, delivery_id):
        raise ProblemError(404, "no-dead-delivery", f"No dead-lettered delivery {delivery_id}.")
    return Response(status_code=202)


async def _pack(scope: CallerScope, conn: ConnectionDep, settings: SettingsDep) -> ReviewPack:
    today = today_in(settings.zone)
    date_from, date_to = review_week(today)
    inputs = PackInputs(scope, date_from, date_to, settings.zone, settings.business_timezone, today)
    return await review_pack(conn, inputs)


@router.get("/review", response_model=ReviewPack, operation_id="get_review", dependencies=[readers(*READERS)])
async def get_review(scope: CallerScope, conn: ConnectionDep, settings: SettingsDep) -> ReviewPack:
    """The review pack of the last whole Monday-Sunday week, for the caller's scope: what the Monday mail shows."""
    return await _pack(scope, conn, settings)


@page_router.get(
    "/dashboard/review", response_class=HTMLResponse, include_in_schema=False, dependencies=[readers(*READERS)]
)
async def review_page(scope: CallerScope, conn: ConnectionDep, settings: SettingsDep) -> HTMLResponse:
    """The review pack as a printable page (print CSS: A4, tables kept whole)."""
    pack = await _pack(scope, conn, settings)
    title = f"Weekly review, {pack.date_from.isoformat()} to {pack.date_to.isoformat()}"
    return HTMLResponse(review_html(pack, title))
