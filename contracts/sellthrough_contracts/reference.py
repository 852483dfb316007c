"""Reference (master) data events. Each one is an upsert of the entity it names: a later occurred_at wins.

Every service builds its own copy of the masters it needs from these events, so no service queries
another's database.
"""

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from sellthrough_contracts.common import Currency, GeoPoint, Id, Money, Name, Payload
from sellthrough_contracts.currency import brand_currency
from sellthrough_contracts.envelope import Envelope, Upcast
from sellthrough_contracts.outline import Outline
from sellthrough_contracts.versions import VERSION_DESCRIPTION, Document, with_payload


class GeographyPayload(Payload):
    geo_id: Id
    level: Literal["zone", "region"]
    name: Name
    parent_id: Id | None = Field(default=None, description="The zone of a region; empty for a zone.")
    outline: Outline | None = Field(
        default=None,
        description="The area's boundary for maps drawn without a tile server: closed lon/lat rings (WGS84), each an "
        "outer boundary (islands are further rings; no holes). Empty: the dashboard draws its outlets' convex hull.",
    )


def geography_v1_to_v2(data: Document) -> Document:
    """Version 2 adds the optional outline (none: the map draws the area's outlets' convex hull)."""

    def no_outline(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("outline", None)
        return payload

    return with_payload(data, no_outline)


class GeographyDefined(Upcast):
    event_type: Literal["GeographyDefined"] = "GeographyDefined"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    payload: GeographyPayload
    upcasters = {1: geography_v1_to_v2}

    def partition_key(self) -> str:
        return self.payload.geo_id


class DistributorPayload(Payload):
    distributor_id: Id
    name: Name
    region_id: Id


class DistributorRegistered(Envelope):
    event_type: Literal["DistributorRegistered"] = "DistributorRegistered"
    payload: DistributorPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class OutletPayload(Payload):
    outlet_id: Id
    name: Name
    distributor_id: Id = Field(description="The distributor that serves this outlet.")
    channel: Name = Field(description="Trade channel, e.g. grocery, chemist, modern trade.")
    outlet_class: Name = Field(description="Outlet class or tier, e.g. A, B, C.")
    location: GeoPoint
    beat_id: Id | None = None


class OutletRegistered(Envelope):
    event_type: Literal["OutletRegistered"] = "OutletRegistered"
    payload: OutletPayload

    def partition_key(self) -> str:
        return self.payload.outlet_id


GST_RATES = frozenset(Decimal(r) for r in ("0", "0.25", "3", "5", "12", "18", "28"))
"""The GST slabs, in percent: 0.25 for rough diamonds, 3 for gold, then 5, 12, 18 and 28."""


class SkuPayload(Payload):
    sku_id: Id
    name: Name
    brand: Name
    category: Name
    list_price: Money = Field(description="Price to retailer per selling unit.")
    max_cover_days: int | None = Field(
        default=None, gt=0, le=365, description="Overstock above this many days of cover; default from settings."
    )
    min_cover_days: int | None = Field(
        default=None, ge=0, le=365, description="Stock-out risk below this many days of cover; default from settings."
    )
    overstock_min_units: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Never overstock at or below this many units on hand, whatever the cover; default from settings.",
    )
    currency: Currency = Field(
        default_factory=brand_currency, description="ISO 4217 code of list_price: the brand's currency."
    )
    hsn_code: str | None = Field(
        default=None, pattern=r"^[0-9]{4}(?:[0-9]{2}){0,2}$", description="HSN code under GST: 4, 6 or 8 digits."
    )
    gst_rate: Decimal | None = Field(
        default=None, description=f"GST rate in percent, one of {', '.join(str(r) for r in sorted(GST_RATES))}."
    )
    units_per_case: int | None = Field(
        default=None, ge=1, le=10_000, description="Selling units in one case: orders may be entered in cases + units."
    )

    @field_validator("gst_rate")
    @classmethod
    def _known_gst_rate(cls, rate: Decimal | None) -> Decimal | None:
        # A rate outside the slabs is a typo (18 for 1.8, 0.18 for 18): refused rather than taxed wrongly.
        if rate is not None and rate not in GST_RATES:
            raise ValueError(f"gst_rate must be one of {', '.join(str(r) for r in sorted(GST_RATES))} (percent)")
        return rate


def _sku_defaults(payload: dict[str, Any]) -> dict[str, Any]:
    for name in ("max_cover_days", "min_cover_days", "overstock_min_units"):
        payload.setdefault(name, None)
    return payload


def sku_v1_to_v2(data: Document) -> Document:
    """Version 2 adds the optional norms (none: the settings apply). Records labelled version 1 written before the
    norms had a version of their own may already carry max_cover_days and min_cover_days: they are kept."""
    return with_payload(data, _sku_defaults)


def _sku_formats(payload: dict[str, Any]) -> dict[str, Any]:
    payload.setdefault("currency", brand_currency())
    for name in ("hsn_code", "gst_rate", "units_per_case"):
        payload.setdefault(name, None)
    return payload


def sku_v2_to_v3(data: Document) -> Document:
    """Version 3 adds the price's currency and the GST and packing fields. A version 2 price was in the brand's
    currency (SELLTHROUGH_CURRENCY); its HSN code, GST rate and case size were not known."""
    return with_payload(data, _sku_formats)


class SkuRegistered(Upcast):
    event_type: Literal["SkuRegistered"] = "SkuRegistered"
    schema_version: Literal[3] = Field(default=3, description=VERSION_DESCRIPTION)
    payload: SkuPayload
    upcasters = {1: sku_v1_to_v2, 2: sku_v2_to_v3}

    def partition_key(self) -> str:
        return self.payload.sku_id


class RepPayload(Payload):
    rep_id: Id
    name: Name
    distributor_id: Id = Field(description="The distributor whose outlets this rep covers.")
    also_covers_distributor_ids: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="Further distributors whose outlets this rep also covers (a rep shared between distributors).",
    )
    beat_ids: list[Id] = Field(
        default_factory=list,
        max_length=1_000,
        description="The beats (outlet routes) this rep works; empty: every beat of its distributors.",
    )


def rep_v1_to_v2(data: Document) -> Document:
    """Version 2 adds the rep's territory: a version 1 rep covered every outlet of its one distributor."""

    def territory(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("also_covers_distributor_ids", [])
        payload.setdefault("beat_ids", [])
        return payload

    return with_payload(data, territory)


class RepRegistered(Upcast):
    """A rep and its territory: the outlets of `distributor_id` and `also_covers_distributor_ids`, narrowed to
    `beat_ids` when any are given. order-capture refuses a rep's field events outside it."""

    event_type: Literal["RepRegistered"] = "RepRegistered"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    payload: RepPayload
    upcasters = {1: rep_v1_to_v2}

    def partition_key(self) -> str:
        return self.payload.rep_id
