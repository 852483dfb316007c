"""Who may post what. Checked on the raw event, before full validation, so a forbidden batch is refused
whole (403) even if some of its events are also malformed: role and event type, actor, the rep named, and the
token's device. Where a poster may write (territory, bound distributors, own orders) depends on reference data
and is judged per event after validation (territory.py)."""

from collections.abc import Mapping
from typing import Any

from sellthrough_contracts import EVENT_TYPES, type_names
from sellthrough_contracts.field import BeatPlanned, DayEnded, DayStarted
from sellthrough_contracts.schemes import SchemeClaimSubmitted
from sellthrough_contracts.topics import DERIVED_EVENT_TYPES, REFERENCE, SCHEMES
from sellthrough_contracts.trade import (
    OrderCancelled,
    OrderCaptured,
    OrderDelivered,
    PrimaryInvoiced,
    RetailerInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
    VisitRecorded,
)
from sellthrough_runtime.auth import Principal, Role

FIELD_EVENT_TYPES = type_names((OrderCaptured, OrderCancelled, ReturnRecorded, VisitRecorded, DayStarted, DayEnded))
"""What a rep records in the field: visits, orders, cancellations of them, goods a retailer hands back, and the
start and end of its working day."""
PLANNING_EVENT_TYPES = type_names((BeatPlanned,))
"""Beat plans: admin only. A regional manager's token reads and never writes (README, 'Who may write what')."""
CONNECTOR_EVENT_TYPES = type_names(
    (
        PrimaryInvoiced,
        RetailerInvoiced,
        StockCounted,
        OrderDelivered,
        OrderCancelled,
        ReturnRecorded,
        StockAdjusted,
        SchemeClaimSubmitted,
    )
)
"""What ERP and distributor systems report."""

DISTRIBUTOR_EVENT_TYPES = type_names((StockCounted, SchemeClaimSubmitted, RetailerInvoiced))
"""What a distributor's own login reports about itself: its counts, claims and its invoices to retailers (a
distributor without a connector uploads its billing export itself)."""

ALLOWED_TYPES: Mapping[Role, frozenset[str]] = {
    Role.REP: FIELD_EVENT_TYPES,
    Role.CONNECTOR: CONNECTOR_EVENT_TYPES,
    Role.DISTRIBUTOR: DISTRIBUTOR_EVENT_TYPES,
    Role.REGIONAL_MANAGER: frozenset(),
    Role.ADMIN: FIELD_EVENT_TYPES
    | CONNECTOR_EVENT_TYPES
    | PLANNING_EVENT_TYPES
    | REFERENCE.event_types
    | SCHEMES.event_types,
    Role.ANALYST: frozenset(),
}

# Payload fields that name the acting rep: a rep may not post an order or a visit on another rep's behalf.
# Attendance is the rep's own: a rep starts and ends only its own day.
_REP_FIELDS = {cls.type_name(): "rep_id" for cls in (OrderCaptured, VisitRecorded, DayStarted, DayEnded)}


def violation(principal: Principal, raw: Mapping[str, Any]) -> str | None:
    """Why this principal may not post this event, or None if it may (or if the event is too malformed to
    tell: validation rejects it then)."""
    event_type = raw.get("event_type")
    if not isinstance(event_type, str):
        return None
    if event_type in DERIVED_EVENT_TYPES:
        return f"{event_type} is derived by its owning service and never accepted over HTTP"
    # Deny by default: a known type is posted only by the roles that list it (an unknown one is left to validation,
    # which names it).
    if event_type in EVENT_TYPES and event_type not in ALLOWED_TYPES[principal.role]:
        return f"role '{principal.role}' may not post {event_type}"
    # A token issued to one device speaks for that device only, whatever its role: a copied token cannot pass
    # its events off as another device's.
    source = raw.get("source")
    if principal.device_id is not None and source != principal.device_id:
        return f"source '{source}' is not the token's device '{principal.device_id}'"
    if principal.role is Role.ADMIN:
        return None
    actor = raw.get("actor")
    if actor != principal.subject:
        return f"actor '{actor}' is not the token's subject '{principal.subject}'"
    rep_field = _REP_FIELDS.get(event_type)
    payload = raw.get("payload")
    if (
        principal.role is Role.REP
        and rep_field
        and isinstance(payload, Mapping)
        and payload.get(rep_field) != principal.subject
    ):
        return f"payload.{rep_field} '{payload.get(rep_field)}' is not the token's rep '{principal.subject}'"
    return None
