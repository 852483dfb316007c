"""Derived stock events, emitted by stock-ledger. Keyed by distributor id.

Each carries a `version` that increases per (distributor, SKU) with every emission, so a reader keeps the
newest state whatever order it reads them in.

Schema version 2 of StockPositionChanged and StockVarianceRecorded carries values as decimal strings; version 1
carried binary floats (7600631.990000007 for a value of 7600631.99), upcast by rounding to the 4 decimal places
of a price (a quantity times a price has no more).
"""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from sellthrough_contracts.common import Currency, Id, Payload, SignedMoney
from sellthrough_contracts.currency import brand_currency, in_brand_currency
from sellthrough_contracts.envelope import Envelope, Upcast
from sellthrough_contracts.versions import VERSION_DESCRIPTION, Document, with_payload

_PRICE_PLACES = Decimal("0.0001")


def _float_to_decimal(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # repr of a float is its shortest round-tripping form: 7600631.990000007, not the binary expansion
        payload[name] = str(Decimal(repr(value)).quantize(_PRICE_PLACES, rounding=ROUND_HALF_EVEN))
    return payload


def position_v1_to_v2(data: Document) -> Document:
    """value: float -> decimal string."""
    return with_payload(data, lambda payload: _float_to_decimal(payload, "value"))


def variance_v1_to_v2(data: Document) -> Document:
    """variance_value: float -> decimal string."""
    return with_payload(data, lambda payload: _float_to_decimal(payload, "variance_value"))


class StockPositionPayload(Payload):
    distributor_id: Id
    sku_id: Id
    on_hand: int = Field(description="Book stock in units; negative means sales were recorded without stock.")
    value: SignedMoney = Field(description="on_hand x the SKU's list price.")
    as_of: AwareDatetime = Field(description="Event time of the newest movement included.")
    version: int = Field(ge=1)
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the amounts beside it.")


class StockPositionChanged(Upcast):
    event_type: Literal["StockPositionChanged"] = "StockPositionChanged"
    schema_version: Literal[3] = Field(default=3, description=VERSION_DESCRIPTION)
    payload: StockPositionPayload
    upcasters = {1: position_v1_to_v2, 2: in_brand_currency}

    def partition_key(self) -> str:
        return self.payload.distributor_id


class StockVariancePayload(Payload):
    count_id: Id
    distributor_id: Id
    sku_id: Id
    counted_at: AwareDatetime
    book: int = Field(description="Book stock just before the count.")
    counted: int
    variance_units: int = Field(description="counted - book: negative is a shortage.")
    variance_value: SignedMoney = Field(description="variance_units x the SKU's list price.")
    revision: int = Field(ge=1, description="Raised when a late event before the count changes its book figure.")
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the amounts beside it.")


class StockVarianceRecorded(Upcast):
    event_type: Literal["StockVarianceRecorded"] = "StockVarianceRecorded"
    schema_version: Literal[3] = Field(default=3, description=VERSION_DESCRIPTION)
    payload: StockVariancePayload
    upcasters = {1: variance_v1_to_v2, 2: in_brand_currency}

    def partition_key(self) -> str:
        return self.payload.distributor_id


AlertKind = Literal["overstock", "stockout_risk", "negative_stock"]


class StockAlertPayload(Payload):
    distributor_id: Id
    sku_id: Id
    kind: AlertKind
    status: Literal["raised", "cleared"]
    on_hand: int
    avg_daily_sales: float = Field(ge=0, description="Secondary units per day over the demand window.")
    days_of_cover: float | None = Field(description="on_hand / avg_daily_sales; null without recent demand.")
    threshold_days: float | None = Field(description="The norm crossed (days of cover), if any.")
    version: int = Field(ge=1)


class StockAlertRaised(Envelope):
    """An alert starting (status raised) or ending (status cleared) for one distributor and SKU."""

    event_type: Literal["StockAlertRaised"] = "StockAlertRaised"
    payload: StockAlertPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id
