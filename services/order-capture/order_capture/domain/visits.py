"""A visit's no-order reason, judged at accept time against the configured list. Pure: no I/O.

A visit that produced no order must say why, with one of the brand's reasons (settings `no_order_reasons`), so
the reasons can be counted; a free-text reason would split one cause over many spellings. Compared ignoring
case: "Shop closed" and "shop closed" are the same reason."""

from collections.abc import Iterable

from order_capture.domain.validation import Reason, Rejection
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import VisitRecorded


def check_visit(event: Envelope, reasons: Iterable[str]) -> Rejection | None:
    if not isinstance(event, VisitRecorded):
        return None
    reason = event.payload.no_order_reason
    if reason is None:
        if event.payload.productive:
            return None
        return Rejection(
            Reason.NO_ORDER_REASON_REQUIRED,
            "a visit without an order needs a no_order_reason, one of: " + ", ".join(reasons),
            event.event_id,
        )
    known = list(reasons)
    if reason.casefold() not in {r.casefold() for r in known}:
        return Rejection(
            Reason.UNKNOWN_NO_ORDER_REASON,
            f"no_order_reason '{reason}' is not one of: {', '.join(known)}",
            event.event_id,
        )
    return None
