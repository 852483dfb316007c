"""Trade events: what moved between manufacturer, distributor and retailer.

All are keyed by distributor id so a consumer sees one distributor's events in order.
"""

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from sellthrough_contracts.common import Currency, GeoPoint, Id, Money, Name, Payload, Quantity
from sellthrough_contracts.currency import brand_currency
from sellthrough_contracts.envelope import Envelope, Upcast
from sellthrough_contracts.versions import VERSION_DESCRIPTION, Document, with_payload


class OrderLine(Payload):
    sku_id: Id
    quantity: Quantity
    unit_price: Money = Field(description="Price per selling unit charged to the retailer.")


class OrderCapturedPayload(Payload):
    order_id: Id = Field(description="Order number on the device; unique per rep.")
    outlet_id: Id
    distributor_id: Id
    rep_id: Id
    visit_id: Id | None = None
    gps: GeoPoint | None = Field(default=None, description="Where the device was when the order was taken.")
    mock_location: bool = Field(
        default=False, description="The device reports its position as mocked (a developer-option or spoofing app)."
    )
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the lines' prices.")


def order_v1_to_v2(data: Document) -> Document:
    """Version 2 adds `mock_location`: a version 1 device did not say, so its position is taken as real."""

    def real_position(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("mock_location", False)
        return payload

    return with_payload(data, real_position)


def order_v2_to_v3(data: Document) -> Document:
    """Version 3 adds the prices' `currency`: a version 2 order was priced in the brand's currency
    (SELLTHROUGH_CURRENCY)."""
    return with_payload(data, lambda payload: {**payload, "currency": payload.get("currency", brand_currency())})


class OrderCaptured(Upcast):
    """A retailer order taken by a rep at the outlet. `occurred_at` is the capture time on the device."""

    event_type: Literal["OrderCaptured"] = "OrderCaptured"
    schema_version: Literal[3] = Field(default=3, description=VERSION_DESCRIPTION)
    payload: OrderCapturedPayload
    upcasters = {1: order_v1_to_v2, 2: order_v2_to_v3}

    def partition_key(self) -> str:
        return self.payload.distributor_id


class VisitRecordedPayload(Payload):
    visit_id: Id = Field(description="Visit id on the device; an order taken during it carries the same visit_id.")
    outlet_id: Id
    distributor_id: Id
    rep_id: Id
    productive: bool = Field(description="True when the visit produced an order.")
    no_order_reason: Name | None = Field(
        default=None,
        description="Why no order was taken: one of order-capture's configured reasons (NO_ORDER_REASONS); "
        "required when the visit is not productive.",
    )
    gps: GeoPoint | None = Field(default=None, description="Where the device was at check-in.")
    checked_in_at: AwareDatetime | None = Field(
        default=None, description="Check-in time on the device; none in version 1 records (occurred_at stands in)."
    )
    checked_out_at: AwareDatetime | None = Field(
        default=None, description="Check-out time on the device; time spent at the outlet runs from check-in to it."
    )
    check_out_gps: GeoPoint | None = Field(default=None, description="Where the device was at check-out.")
    mock_location: bool = Field(default=False, description="The device reported its location as mocked.")

    @model_validator(mode="after")
    def _check_out_after_check_in(self) -> "VisitRecordedPayload":
        if self.checked_in_at and self.checked_out_at and self.checked_out_at < self.checked_in_at:
            raise ValueError("checked_out_at is before checked_in_at")
        return self


def visit_v1_to_v2(data: Document) -> Document:
    """Version 2 adds check-in and check-out and the device's mock-location flag; a version 1 visit had none of
    them (its gps was taken during the visit, kept as the check-in position)."""

    def times(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("checked_in_at", None)
        payload.setdefault("checked_out_at", None)
        payload.setdefault("check_out_gps", None)
        payload.setdefault("mock_location", False)
        return payload

    return with_payload(data, times)


class VisitRecorded(Upcast):
    """A rep's call at an outlet, productive or not: the denominator of strike rate and lines per call."""

    event_type: Literal["VisitRecorded"] = "VisitRecorded"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    payload: VisitRecordedPayload
    upcasters = {1: visit_v1_to_v2}

    def partition_key(self) -> str:
        return self.payload.distributor_id


ROUNDING = Decimal("0.01")
"""How far a line's taxable value + tax may be from its value, and its tax from taxable value x GST rate: one paisa
(or cent), what rounding each amount to two places can cost."""


class InvoiceLine(Payload):
    sku_id: Id
    quantity: Quantity
    unit_price: Money = Field(description="Price per selling unit, tax included: the line's value is quantity x it.")
    taxable_value: Money | None = Field(
        default=None, description="The line's value before GST (with `tax`: both or neither)."
    )
    tax: Money | None = Field(default=None, description="GST on the line (CGST + SGST, or IGST).")

    @model_validator(mode="after")
    def _tax_adds_up(self) -> "InvoiceLine":
        if (self.taxable_value is None) != (self.tax is None):
            raise ValueError("taxable_value and tax go together: give both or neither")
        if self.taxable_value is not None and self.tax is not None:
            value = self.quantity * self.unit_price
            if abs(self.taxable_value + self.tax - value) > ROUNDING:
                raise ValueError(
                    f"taxable_value + tax is {self.taxable_value + self.tax}, not the line's value "
                    f"quantity x unit_price = {value}"
                )
        return self


class PrimaryInvoicedPayload(Payload):
    invoice_number: Id = Field(description="ERP invoice number; unique per manufacturer.")
    distributor_id: Id
    invoice_date: date
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the lines' amounts.")
    lines: list[InvoiceLine] = Field(min_length=1, max_length=2000)


def invoice_v1_to_v2(data: Document) -> Document:
    """Version 2 adds the invoice's currency and each line's taxable value and tax. A version 1 invoice was in the
    brand's currency (SELLTHROUGH_CURRENCY) and did not split its lines' tax."""

    def formats(payload: dict[str, Any]) -> dict[str, Any]:
        payload.setdefault("currency", brand_currency())
        lines = payload.get("lines")
        if isinstance(lines, list):
            payload["lines"] = [
                {"taxable_value": None, "tax": None, **line} if isinstance(line, dict) else line for line in lines
            ]
        return payload

    return with_payload(data, formats)


class PrimaryInvoiced(Upcast):
    """A manufacturer -> distributor invoice, published by an ERP connector."""

    event_type: Literal["PrimaryInvoiced"] = "PrimaryInvoiced"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    payload: PrimaryInvoicedPayload
    upcasters = {1: invoice_v1_to_v2}

    def partition_key(self) -> str:
        return self.payload.distributor_id


class RetailerInvoiceLine(Payload):
    sku_id: Id
    quantity: Quantity
    value: Money = Field(description="What the retailer is billed for the line, tax included.")
    taxable_value: Money | None = Field(default=None, description="The line's value before tax (GST), if given.")
    tax: Money | None = Field(default=None, description="The tax (GST) charged on the line, if given.")


class RetailerInvoicedPayload(Payload):
    invoice_number: Id = Field(description="The distributor's invoice number (DMS or Tally); unique per distributor.")
    distributor_id: Id
    outlet_id: Id = Field(description="The retailer billed.")
    invoice_date: date
    order_id: Id | None = Field(
        default=None,
        description="The OrderCaptured this invoice fulfils: the invoice is then that order's delivery. None: a "
        "sale the distributor made without a rep's order, counted as secondary sales of its own.",
    )
    currency: Currency = Field(default_factory=brand_currency, description="ISO 4217 code of the lines' amounts.")
    lines: list[RetailerInvoiceLine] = Field(min_length=1, max_length=2000)


class RetailerInvoiced(Envelope):
    """A distributor -> retailer invoice from the distributor's billing software (DMS, Tally), published by a
    connector or the distributor's login: a second source of secondary sales beside the reps' orders."""

    event_type: Literal["RetailerInvoiced"] = "RetailerInvoiced"
    payload: RetailerInvoicedPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class CountLine(Payload):
    sku_id: Id
    quantity: int = Field(ge=0, le=10_000_000, description="Counted units; zero is a valid count.")


class StockCountedPayload(Payload):
    count_id: Id
    distributor_id: Id
    outlet_id: Id | None = Field(default=None, description="Set when the count was taken at an outlet.")
    counted_at: AwareDatetime
    lines: list[CountLine] = Field(min_length=1, max_length=5000)
    purpose: Literal["count", "opening"] = Field(
        default="count",
        description="'opening' declares an opening balance: it sets book stock without recording a variance.",
    )


def count_v1_to_v2(data: Document) -> Document:
    """Version 2 adds `purpose`; a version 1 count is a count (records labelled version 1 that already carry a
    purpose keep it)."""
    return with_payload(data, lambda payload: {"purpose": "count", **payload})


class StockCounted(Upcast):
    """A physical stock count by a distributor or auditor."""

    event_type: Literal["StockCounted"] = "StockCounted"
    schema_version: Literal[2] = Field(default=2, description=VERSION_DESCRIPTION)
    payload: StockCountedPayload
    upcasters = {1: count_v1_to_v2}

    def partition_key(self) -> str:
        return self.payload.distributor_id


class DeliveryLine(Payload):
    sku_id: Id
    quantity: int = Field(ge=0, le=1_000_000, description="Units delivered; zero when a line could not be filled.")


class OrderDeliveredPayload(Payload):
    delivery_id: Id = Field(description="Delivery or invoice number in the distributor's system.")
    order_id: Id = Field(description="The OrderCaptured this delivery fulfils.")
    outlet_id: Id
    distributor_id: Id
    lines: list[DeliveryLine] = Field(min_length=1, max_length=500)


class OrderDelivered(Envelope):
    """Goods delivered against a captured order, reported by a distributor system (DMS) connector.

    Once an order has a delivery, its stock effect is the delivered quantities at delivery time, not the
    ordered ones: fill rate = delivered / ordered."""

    event_type: Literal["OrderDelivered"] = "OrderDelivered"
    payload: OrderDeliveredPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class OrderCancelledPayload(Payload):
    order_id: Id
    outlet_id: Id
    distributor_id: Id
    reason: Name


class OrderCancelled(Envelope):
    """A captured order that will not be delivered. An order already delivered is not undone: that is a return."""

    event_type: Literal["OrderCancelled"] = "OrderCancelled"
    payload: OrderCancelledPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class ReturnLine(Payload):
    sku_id: Id
    quantity: Quantity


class ReturnRecordedPayload(Payload):
    return_id: Id
    distributor_id: Id
    outlet_id: Id | None = Field(default=None, description="The retailer returning goods, for retailer returns.")
    direction: Literal["from_retailer", "to_company"] = Field(
        description="from_retailer adds to the distributor's stock; to_company removes from it."
    )
    reason: Literal["damaged", "expired", "unsold"]
    lines: list[ReturnLine] = Field(min_length=1, max_length=500)


class ReturnRecorded(Envelope):
    event_type: Literal["ReturnRecorded"] = "ReturnRecorded"
    payload: ReturnRecordedPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id


class AdjustmentLine(Payload):
    sku_id: Id
    quantity_delta: int = Field(ge=-1_000_000, le=1_000_000, description="Units added (+) or written off (-).")


class StockAdjustedPayload(Payload):
    adjustment_id: Id
    distributor_id: Id
    reason: Name = Field(description="Why, e.g. write-off, transfer in, breakage.")
    lines: list[AdjustmentLine] = Field(min_length=1, max_length=500)


class StockAdjusted(Envelope):
    event_type: Literal["StockAdjusted"] = "StockAdjusted"
    payload: StockAdjustedPayload

    def partition_key(self) -> str:
        return self.payload.distributor_id
