"""The business id each kind of fact is counted once by, whatever event_id it comes under.

An ERP or a phone may send the same delivery, return, count or invoice again under a new event_id (a re-export,
a reinstalled app). Each consumer applies events by event_id, so such a copy would be counted twice, and not
alike by every consumer (query-api keeps the first delivery of an id, the stock ledger moves stock for each
event). The edge therefore accepts one event per fact: a later one with the same content is a duplicate, one
with other content is refused (order_id_reused for orders, business_id_reused for the rest)."""

from collections.abc import Mapping
from typing import Any

from sellthrough_contracts.trade import (
    OrderCancelled,
    OrderCaptured,
    OrderDelivered,
    PrimaryInvoiced,
    RetailerInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
)

BUSINESS_IDS: Mapping[str, str] = {
    cls.type_name(): field
    for cls, field in (
        (OrderCaptured, "order_id"),
        (OrderCancelled, "order_id"),
        (OrderDelivered, "delivery_id"),
        (ReturnRecorded, "return_id"),
        (PrimaryInvoiced, "invoice_number"),
        (RetailerInvoiced, "invoice_number"),
        (StockCounted, "count_id"),
        (StockAdjusted, "adjustment_id"),
    )
}
"""Event type -> the payload field that names one fact of the distributor (a cancellation: one per order).

SchemeClaimSubmitted is deliberately absent: a claim id submitted again with other content is the claim's next
revision (scheme-engine keeps them all, claims.py), not a reused id to refuse; the same content again is no new
revision there either."""

BusinessKey = tuple[str, str, str]
"""(event_type, distributor_id, business id)."""


def business_key(event_type: str, payload: Mapping[str, Any]) -> BusinessKey | None:
    field = BUSINESS_IDS.get(event_type)
    if field is None:
        return None
    return event_type, str(payload["distributor_id"]), str(payload[field])
