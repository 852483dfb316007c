"""Indian business formats at the edge: the books' one currency, orders entered in cases + units, GST on invoices.

Pure: no I/O. The currency check and the cases + units reading work on the raw documents, before validation (the
contract knows only `quantity`); the GST check on validated invoices, against the SKUs' rates in the masters.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from order_capture.domain.validation import Reason, Rejection, event_id_of
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import ROUNDING, OrderCaptured, PrimaryInvoiced

_ORDER = OrderCaptured.type_name()
_INVOICE = PrimaryInvoiced.type_name()
_MAX_QUANTITY = 1_000_000  # common.Quantity's bound: a larger sum is left for the contract to refuse


def foreign_currencies(raw_events: list[Any], currency: str) -> list[dict[str, Any]]:
    """The events of a batch whose payload names another currency than the books' (single-currency books: a rupee
    figure summed with a dollar one would be neither). A client sending one is misconfigured, not unlucky, so the
    route refuses the whole batch (422), as it does a forbidden one."""
    return [
        {"index": i, "currency": payload["currency"]}
        for i, raw in enumerate(raw_events)
        if isinstance(raw, dict)
        and isinstance(payload := raw.get("payload"), dict)
        and "currency" in payload
        and payload["currency"] != currency
    ]


def _has_cases(line: Any) -> bool:
    return isinstance(line, dict) and ("cases" in line or "units" in line)


def case_skus(raw_events: list[Any]) -> set[str]:
    """The SKUs of order lines entered in cases + units: those whose case size the batch needs."""
    return {
        str(line.get("sku_id"))
        for raw in raw_events
        if isinstance(raw, dict) and raw.get("event_type") == _ORDER and isinstance(raw.get("payload"), dict)
        for line in raw["payload"].get("lines") or []
        if _has_cases(line)
    }


def _count(value: Any) -> bool:
    # Strict as the contract is: a bool or a string is not a count.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_QUANTITY


def in_units(raw: Any, units_per_case: Mapping[str, int]) -> Any:
    """An OrderCaptured whose lines give `cases` and `units` (either may be left out: 0) with each such line's
    `quantity` = cases x units_per_case + units, the only shape the contract knows; a rejection if a line's SKU has no
    case size or its counts are not counts. Anything else unchanged."""
    if not isinstance(raw, dict) or raw.get("event_type") != _ORDER or not isinstance(raw.get("payload"), dict):
        return raw
    lines = raw["payload"].get("lines")
    if not isinstance(lines, list) or not any(_has_cases(line) for line in lines):
        return raw
    converted = []
    for i, line in enumerate(lines):
        if not _has_cases(line):
            converted.append(line)
            continue
        rest = {k: v for k, v in line.items() if k not in ("cases", "units")}
        cases, units = line.get("cases", 0), line.get("units", 0)
        field = f"payload.lines.{i}"
        if "quantity" in line:
            return _invalid(raw, field, "give quantity, or cases and units, not both")
        if not _count(cases) or not _count(units):
            return _invalid(raw, field, f"cases and units must be whole numbers from 0 to {_MAX_QUANTITY}")
        size = units_per_case.get(str(line.get("sku_id")))
        if size is None:
            return Rejection(
                Reason.NO_UNITS_PER_CASE,
                f"SKU '{line.get('sku_id')}' has no units_per_case (or is not registered): enter its quantity in units",
                event_id_of(raw),
            )
        converted.append({**rest, "quantity": cases * size + units})
    return {**raw, "payload": {**raw["payload"], "lines": converted}}


def _invalid(raw: dict[str, Any], field: str, message: str) -> Rejection:
    return Rejection(
        Reason.INVALID_FIELDS, f"{field}: {message}", event_id_of(raw), [{"field": field, "message": message}]
    )


def check_gst(event: Envelope, gst_rates: Mapping[str, Decimal]) -> Rejection | None:
    """An invoice line's tax must be its taxable value x its SKU's GST rate, to the paisa; a SKU whose rate is not
    known is taken as invoiced (the ERP knows better than masters that never said)."""
    if event.event_type != _INVOICE or not isinstance(event, PrimaryInvoiced):
        return None
    for i, line in enumerate(event.payload.lines):
        rate = gst_rates.get(line.sku_id)
        if rate is None or line.taxable_value is None or line.tax is None:
            continue
        expected = line.taxable_value * rate / 100
        if abs(line.tax - expected) > ROUNDING:
            return Rejection(
                Reason.TAX_NOT_AT_GST_RATE,
                f"lines.{i}: tax {line.tax} is not taxable_value {line.taxable_value} x GST {rate}% of SKU "
                f"'{line.sku_id}' = {expected.quantize(ROUNDING)}",
                event.event_id,
            )
    return None
