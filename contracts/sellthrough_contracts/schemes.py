"""Trade-scheme (promotion) events: a scheme is launched, amended from an effective time, and maybe ended early.

Keyed by scheme id, so one scheme's events stay in order. Each launch and amendment carries a complete
definition (never a patch): the scheme engine keeps every version and judges an order by the version in
effect at the order's `occurred_at`, so a late order is judged by the rules that applied when it was taken.

Benefits and how they are computed (the scheme engine implements these rules; money is rounded half-up to
two decimal places per line):
- `percent_discount`: `percent` off the gross value of every qualifying line, once the order holds at least
  `min_quantity` qualifying units.
- `flat_discount`: `amount` off per qualifying unit (`per="unit"`) or once per order (`per="order"`, spread
  over the qualifying lines in proportion to their value), once the order holds `min_quantity` qualifying
  units. Never more than the qualifying lines are worth.
- `quantity_slabs`: a tier, not progressive: the highest slab whose `min_quantity` the order's qualifying
  units reach gives its `percent` off every qualifying unit.
- `order_value_slabs`: the same over the gross value (quantity x unit price) of the qualifying lines.
- `buy_x_get_y`: `free_quantity` units free for every `buy_quantity` qualifying units (once only unless
  `repeating`). Without `free_sku_id` the free goods are the same SKU and each qualifying SKU counts on its
  own; with it, qualifying units of all SKUs are pooled and the free goods are that SKU, valued at its unit
  price on the order if it is there, else at `free_unit_cost`.

A line qualifies when its SKU is in `applies_to.sku_ids` or its brand in `applies_to.brands` (both empty:
every SKU). An order is targeted when every non-empty `targeting` dimension contains the order's value.
"""

from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, Field, field_validator, model_validator

from sellthrough_contracts.common import Currency, Id, Money, Name, Payload, Quantity
from sellthrough_contracts.currency import brand_currency, in_brand_currency
from sellthrough_contracts.envelope import Envelope, Upcast
from sellthrough_contracts.versions import VERSION_DESCRIPTION, Document, with_payload

Percent = Annotated[Decimal, Field(gt=0, le=100, max_digits=7, decimal_places=4)]
"""A share of value in percent: more than 0, at most 100."""

PositiveMoney = Annotated[Money, Field(gt=0)]


class PercentDiscount(Payload):
    kind: Literal["percent_discount"] = "percent_discount"
    percent: Percent
    min_quantity: Quantity = Field(default=1, description="Qualifying units the order must hold.")


class FlatDiscount(Payload):
    kind: Literal["flat_discount"] = "flat_discount"
    amount: PositiveMoney
    per: Literal["unit", "order"] = Field(
        description="'unit': amount off each qualifying unit; 'order': amount off the order once."
    )
    min_quantity: Quantity = Field(default=1, description="Qualifying units the order must hold.")


class QuantitySlab(Payload):
    min_quantity: Quantity
    percent: Percent


class QuantitySlabs(Payload):
    """The highest slab reached gives its percent off every qualifying unit (a tier, not progressive)."""

    kind: Literal["quantity_slabs"] = "quantity_slabs"
    slabs: list[QuantitySlab] = Field(min_length=1, max_length=50)

    @field_validator("slabs")
    @classmethod
    def _slabs_climb(cls, slabs: list[QuantitySlab]) -> list[QuantitySlab]:
        _check_slabs([(Decimal(s.min_quantity), s.percent) for s in slabs], "min_quantity")
        return slabs


class OrderValueSlab(Payload):
    min_value: Money
    percent: Percent


class OrderValueSlabs(Payload):
    """The highest slab reached by the qualifying lines' gross value gives its percent off those lines."""

    kind: Literal["order_value_slabs"] = "order_value_slabs"
    slabs: list[OrderValueSlab] = Field(min_length=1, max_length=50)

    @field_validator("slabs")
    @classmethod
    def _slabs_climb(cls, slabs: list[OrderValueSlab]) -> list[OrderValueSlab]:
        _check_slabs([(s.min_value, s.percent) for s in slabs], "min_value")
        return slabs


def _check_slabs(slabs: list[tuple[Decimal, Decimal]], threshold: str) -> None:
    # A slab whose threshold is not above the previous one could never be the highest reached, and a
    # higher slab giving less would punish buying more: both are data-entry errors, so refuse them.
    for index in range(1, len(slabs)):
        (low, low_percent), (high, high_percent) = slabs[index - 1], slabs[index]
        if high <= low:
            raise ValueError(
                f"slabs must be sorted by strictly increasing {threshold}: slab {index} ({high}) "
                f"is not above slab {index - 1} ({low})"
            )
        if high_percent < low_percent:
            raise ValueError(
                f"a higher slab must not give a smaller percent: slab {index} gives {high_percent}, "
                f"slab {index - 1} gives {low_percent}"
            )


class BuyXGetY(Payload):
    kind: Literal["buy_x_get_y"] = "buy_x_get_y"
    buy_quantity: Quantity = Field(description="X: qualifying units bought per set.")
    free_quantity: Quantity = Field(description="Y: free units per set.")
    free_sku_id: Id | None = Field(default=None, description="The free SKU; empty means the SKU bought.")
    repeating: bool = Field(description="True: Y free for every X bought; false: Y free once.")
    free_unit_cost: Money | None = Field(
        default=None,
        description="Value of one free unit when free_sku_id is not on the order; required with free_sku_id.",
    )

    @model_validator(mode="after")
    def _free_goods_can_be_valued(self) -> Self:
        if self.free_sku_id is not None and self.free_unit_cost is None:
            raise ValueError("free_unit_cost is required when free_sku_id is set (the order may not carry it)")
        if self.free_sku_id is None and self.free_unit_cost is not None:
            raise ValueError("free_unit_cost only applies with free_sku_id: same-SKU free goods use the line price")
        return self


Benefit = Annotated[
    PercentDiscount | FlatDiscount | QuantitySlabs | BuyXGetY | OrderValueSlabs,
    Field(discriminator="kind"),
]


class Products(Payload):
    """Which order lines qualify: a line matching either list qualifies; both empty means every SKU."""

    sku_ids: list[Id] = Field(default_factory=list, max_length=10_000)
    brands: list[Name] = Field(default_factory=list, max_length=1_000)


class Targeting(Payload):
    """Which orders the scheme is for. An empty list does not restrict its dimension; every non-empty one
    must contain the order's value (AND across dimensions, OR within one)."""

    zone_ids: list[Id] = Field(default_factory=list, max_length=1_000)
    region_ids: list[Id] = Field(default_factory=list, max_length=10_000)
    distributor_ids: list[Id] = Field(default_factory=list, max_length=10_000)
    channels: list[Name] = Field(default_factory=list, max_length=1_000)
    outlet_classes: list[Name] = Field(default_factory=list, max_length=1_000)
    outlet_ids: list[Id] = Field(default_factory=list, max_length=100_000)


class SchemeDefinition(Payload):
    scheme_id: Id
    name: Name
    valid_from: AwareDatetime = Field(description="First instant (event time) an order can earn the benefit.")
    valid_to: AwareDatetime = Field(description="Exclusive end: an order at exactly this instant does not earn.")
    benefit: Benefit
    applies_to: Products = Field(default_factory=Products)
    targeting: Targeting = Field(default_factory=Targeting)
    total_budget: Money | None = Field(default=None, description="Most the scheme may give in total.")
    per_outlet_budget: Money | None = Field(default=None, description="Most one outlet may receive.")
    exclusive: bool = Field(default=False, description="When it ranks first, no other scheme applies.")
    priority: int = Field(default=100, ge=1, le=1_000, description="Lower number ranks first.")
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the amounts beside it.")

    @model_validator(mode="after")
    def _window_is_not_empty(self) -> Self:
        if self.valid_to <= self.valid_from:
            raise ValueError(
                f"valid_to ({self.valid_to.isoformat()}) must be after valid_from ({self.valid_from.isoformat()}); "
                "valid_to is exclusive"
            )
        return self


class SchemeLaunchedPayload(SchemeDefinition):
    """The scheme's first definition."""


class SchemeLaunched(Upcast):
    event_type: Literal["SchemeLaunched"] = "SchemeLaunched"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    upcasters = {1: in_brand_currency}
    payload: SchemeLaunchedPayload

    def partition_key(self) -> str:
        return self.payload.scheme_id


class SchemeAmendedPayload(SchemeDefinition):
    """A complete replacement definition, for orders that occur at or after `effective_from`."""

    effective_from: AwareDatetime = Field(description="Orders from this instant (event time) use this definition.")
    reason: Name | None = None

    @model_validator(mode="after")
    def _takes_effect_inside_its_window(self) -> Self:
        if self.effective_from >= self.valid_to:
            raise ValueError(
                f"effective_from ({self.effective_from.isoformat()}) must be before valid_to "
                f"({self.valid_to.isoformat()}): the amendment would never apply"
            )
        return self


class SchemeAmended(Upcast):
    event_type: Literal["SchemeAmended"] = "SchemeAmended"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    upcasters = {1: in_brand_currency}
    payload: SchemeAmendedPayload

    def partition_key(self) -> str:
        return self.payload.scheme_id


class SchemeEndedPayload(Payload):
    scheme_id: Id
    ended_at: AwareDatetime = Field(description="Orders at or after this instant (event time) earn nothing.")
    reason: Name | None = None


class SchemeEnded(Envelope):
    event_type: Literal["SchemeEnded"] = "SchemeEnded"
    payload: SchemeEndedPayload

    def partition_key(self) -> str:
        return self.payload.scheme_id


class ClaimLineSubmitted(Payload):
    outlet_id: Id
    amount: Money = Field(description="What the distributor claims for this outlet.")
    order_id: Id | None = Field(default=None, description="The order the amount is for, when the claim names one.")


class SchemeClaimSubmittedPayload(Payload):
    claim_id: Id = Field(description="The distributor's claim number; unique per distributor.")
    scheme_id: Id
    distributor_id: Id
    period_from: AwareDatetime = Field(description="First instant (event time) of orders claimed for.")
    period_to: AwareDatetime = Field(description="Exclusive end of the claimed period.")
    claimed_amount: Money
    lines: list[ClaimLineSubmitted] = Field(default_factory=list, max_length=10_000)
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the amounts beside it.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.period_to <= self.period_from:
            raise ValueError("period_to must be after period_from (period_to is exclusive)")
        # Money is settled in cents: a claim in fractions of a cent cannot be paid as claimed.
        amounts = [self.claimed_amount, *(line.amount for line in self.lines)]
        if any(amount != amount.quantize(Decimal("0.01")) for amount in amounts):
            raise ValueError("claimed amounts must be whole cents")
        if self.lines and sum((line.amount for line in self.lines), Decimal(0)) != self.claimed_amount:
            raise ValueError("claim lines must add up to claimed_amount")
        return self


class SchemeClaimSubmitted(Upcast):
    """A distributor's claim for a scheme's benefits it passed on, posted by a connector or an admin."""

    event_type: Literal["SchemeClaimSubmitted"] = "SchemeClaimSubmitted"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    upcasters = {1: in_brand_currency}
    payload: SchemeClaimSubmittedPayload

    def partition_key(self) -> str:
        return self.payload.scheme_id


class SchemeAppliedPayload(Payload):
    """What one order was granted under one scheme. A later `revision` for the same (scheme_id,
    order_event_id) replaces the earlier one: budgets are re-allocated by event time when a late order
    arrives, and a cancelled order drops to zero."""

    scheme_id: Id
    order_event_id: UUID = Field(description="The OrderCaptured event the benefit is for.")
    order_id: Id
    outlet_id: Id
    distributor_id: Id
    order_occurred_at: AwareDatetime
    qualifying_units: int = Field(ge=0)
    discount_value: Money
    free_units: int = Field(ge=0)
    free_units_cost: Money
    limited_by: Literal["total_budget", "per_outlet_budget"] | None = None
    revision: int = Field(ge=1)
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the amounts beside it.")


class SchemeApplied(Upcast):
    event_type: Literal["SchemeApplied"] = "SchemeApplied"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    upcasters = {1: in_brand_currency}
    payload: SchemeAppliedPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


ClaimReason = Literal[
    "no_captured_order",
    "order_outside_validity",
    "outlet_not_targeted",
    "excluded_by_stacking",
    "slab_not_reached",
    "budget_exhausted",
    "claimed_more_than_entitled",
    "unknown_scheme",
]


class ClaimLineAssessed(Payload):
    outlet_id: Id
    order_id: Id | None = None
    claimed: Money
    entitled: Money
    approved: Money
    over_claim: Money
    reasons: list[ClaimReason] = Field(default_factory=list)


class ClaimSubmission(Payload):
    """One SchemeClaimSubmitted of a claim id: a resubmission is a new revision, and the earlier ones are kept."""

    revision: int = Field(ge=1, description="Numbered in the order the engine received the submissions.")
    event_id: UUID = Field(description="The SchemeClaimSubmitted event.")
    occurred_at: AwareDatetime
    claimed_amount: Money
    current: bool = Field(
        description="The submission assessed: the latest by occurred_at, so one received late never replaces a "
        "newer one."
    )


class ClaimAssessedPayload(Payload):
    claim_id: Id
    scheme_id: Id
    distributor_id: Id
    claimed: Money
    entitled: Money
    approved: Money
    over_claim: Money = Field(description="claimed - approved.")
    reasons: list[ClaimReason] = Field(default_factory=list)
    lines: list[ClaimLineAssessed] = Field(default_factory=list)
    revision: int = Field(
        ge=1, description="Raised each time the claim is assessed again (resubmitted, or its scheme re-allocated)."
    )
    claim_revision: int = Field(ge=1, description="Which submission of the claim (1, 2, ...) this assessment is of.")
    submissions: list[ClaimSubmission] = Field(
        default_factory=list,
        max_length=1_000,
        description="Every submission of the claim received so far, in the order received; none kept by version 1.",
    )
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the amounts beside it.")


def claim_assessed_v1_to_v2(data: Document) -> Document:
    """Version 1 assessed the last submission and kept no history: read as revision 1 of the claim."""

    def first_revision(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("claim_revision", 1)
        payload.setdefault("submissions", [])
        return payload

    return with_payload(data, first_revision)


class ClaimAssessed(Upcast):
    event_type: Literal["ClaimAssessed"] = "ClaimAssessed"
    schema_version: Literal[3] = Field(default=3, description=VERSION_DESCRIPTION)
    payload: ClaimAssessedPayload
    upcasters = {1: claim_assessed_v1_to_v2, 2: in_brand_currency}

    def partition_key(self) -> str:
        return self.payload.distributor_id
