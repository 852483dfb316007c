from datetime import timedelta

from pydantic import Field

from order_capture.domain.geo import Rule
from sellthrough_contracts.common import Currency
from sellthrough_contracts.currency import DEFAULT_CURRENCY
from sellthrough_runtime.auth import Role
from sellthrough_runtime.settings import ServiceSettings

_MAX_AGE_DAYS = 36_500
"""Any window reaches 2000-01-01, the floor, long before this; beyond it server time minus the window overflows."""


class OrderCaptureSettings(ServiceSettings):
    http_port: int = 8001
    currency: Currency = Field(
        default=DEFAULT_CURRENCY,
        description="ISO 4217 code of the brand's books (SELLTHROUGH_CURRENCY): a batch with an event in another "
        "currency is refused whole (422 foreign-currency). Older events without one are read as in it.",
    )
    max_batch_events: int = Field(default=1000, ge=1, description="Most events one POST may carry.")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    http_workers: int = Field(
        default=2,
        ge=1,
        description="Processes serving HTTP (uvicorn workers) in one instance, each a full copy of the service: "
        "validation is CPU-bound Python, so one process uses one core at most. See sellthrough_runtime.workers.",
    )
    masters_cache: bool = Field(
        default=True,
        description="Keep the masters batches name in each worker's memory, emptied when PostgreSQL notifies a "
        "change (SELLTHROUGH_MASTERS_CACHE; adapters/masters_cache.py); false reads them once per batch.",
    )
    future_tolerance_seconds: int = Field(
        default=300, ge=0, description="How far ahead of server time a device clock may be before an event is refused."
    )
    occurred_at_max_age_days_rep: int = Field(
        default=45,
        ge=0,
        le=_MAX_AGE_DAYS,
        description="How old an event a rep may post (occurred_at before server time), in days: a phone syncs late, "
        "but not months late.",
    )
    occurred_at_max_age_days_connector: int = Field(
        default=400,
        ge=0,
        le=_MAX_AGE_DAYS,
        description="How old an event a connector may post, in days: ERP back-fills reach further.",
    )
    occurred_at_max_age_days_admin: int = Field(
        default=400,
        ge=0,
        le=_MAX_AGE_DAYS,
        description="How old an event an admin may post (reference data, back-fills), in days.",
    )

    idempotency_key_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Idempotency keys are kept this long after their event was accepted, then deleted "
        "(adapters/retention.py); a retry after that is accepted again unless its fact's business key (an order, a "
        "delivery) catches it. Unset: one day more than the largest occurred_at_max_age_days_*, the longest any retry "
        "can still pass the age check, so no retry is ever accepted twice. See docs/retention.md.",
    )

    no_order_reasons: list[str] = Field(
        default=["stock sufficient", "shop closed", "owner absent", "credit limit reached"],
        min_length=1,
        description="Why a visit may end without an order: a VisitRecorded that is not productive must give one "
        "of these (compared ignoring case), or it is rejected (no_order_reason_required, unknown_no_order_reason). "
        'As JSON, e.g. NO_ORDER_REASONS=\'["shop closed", "owner absent"]\'.',
    )

    geo_radius_m: float = Field(
        default=100.0,
        ge=0,
        description="Default on-site radius around an outlet's geotag, in metres; a capture is on site within this "
        "plus its reported accuracy.",
    )
    geo_radius_m_by_channel: dict[str, float] = Field(
        default_factory=dict,
        description='Radius per outlet channel, overriding geo_radius_m (JSON, e.g. {"modern trade": 250}).',
    )
    geo_max_accuracy_m: float = Field(
        default=100.0, ge=0, description="A fix coarser than this (accuracy radius, metres) is low_accuracy."
    )
    geo_reject_off_site_channels: list[str] = Field(
        default_factory=list,
        description="Channels that opt in to rejecting an order or visit judged off_site (reason off_site); "
        "elsewhere the verdict is recorded and the event accepted.",
    )

    @property
    def idempotency_key_days(self) -> int:
        """How long idempotency keys are kept: set, or past the last day any retry could be accepted. A retry
        repeats its event's occurred_at, which is at or before its acceptance (up to future_tolerance_seconds
        after it), so it is refused by age once the largest max age has passed since acceptance."""
        if self.idempotency_key_retention_days is not None:
            return self.idempotency_key_retention_days
        return 1 + max(
            self.occurred_at_max_age_days_rep,
            self.occurred_at_max_age_days_connector,
            self.occurred_at_max_age_days_admin,
        )

    def geo_rule(self, channel: str | None) -> Rule:
        radius = self.geo_radius_m_by_channel.get(channel or "", self.geo_radius_m)
        return Rule(radius_m=radius, max_accuracy_m=self.geo_max_accuracy_m)

    def rejects_off_site(self, channel: str | None) -> bool:
        return channel is not None and channel in self.geo_reject_off_site_channels

    def occurred_at_max_age(self, role: Role) -> timedelta:
        """How far back occurred_at may be for events posted by `role` (analysts post nothing: the narrowest)."""
        days = {
            Role.CONNECTOR: self.occurred_at_max_age_days_connector,
            Role.ADMIN: self.occurred_at_max_age_days_admin,
        }.get(role, self.occurred_at_max_age_days_rep)
        return timedelta(days=days)
