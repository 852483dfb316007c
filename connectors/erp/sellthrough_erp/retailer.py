"""Reading a distributor's billing export (its invoices to retailers) into RetailerInvoiced events. Pure: no I/O
beyond reading the file.

CSV: one row per invoice line, with a header row. Columns (any order; extra columns are ignored):
    invoice_number  the distributor's invoice number; with distributor_id, the idempotency key
    invoice_date    YYYY-MM-DD
    distributor_id  the distributor billing
    outlet_id       the retailer billed
    order_id        optional: the rep's order this invoice delivers (empty: a sale without an order)
    sku_id          the SKU
    quantity        units, a whole number > 0
    value           the line's value billed, tax included (or unit_price: value = quantity x unit_price)
    taxable_value   optional: the line's value before tax
    tax             optional: the tax (GST) on the line
    currency        optional: ISO 4217 code (default INR)
    invoiced_at     optional: ISO 8601 timestamp with a zone (default: midnight UTC of invoice_date)
A Tally XML export gives the same rows (tally.py). As for primary invoices, a bad row rejects its whole invoice.
"""

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from sellthrough_contracts import parse_event
from sellthrough_erp.invoices import NAMESPACE, Invoice, Rejected

REQUIRED_COLUMNS = ("invoice_number", "invoice_date", "distributor_id", "outlet_id", "sku_id", "quantity")
HEADER_FIELDS = ("invoice_date", "distributor_id", "outlet_id", "order_id", "currency", "invoiced_at")


def event_id_for(distributor_id: str, invoice_number: str) -> uuid.UUID:
    """Same distributor and invoice number, same event id: a re-import is a duplicate (numbers are unique only per
    distributor, so the distributor is part of it)."""
    return uuid.uuid5(NAMESPACE, f"RetailerInvoiced:{distributor_id}:{invoice_number}")


def _amount(row: dict[str, Any], name: str) -> tuple[Decimal | None, str | None]:
    text = str(row.get(name) or "").strip()
    if not text:
        return None, None
    try:
        return Decimal(text), None
    except InvalidOperation:
        return None, f"{name} '{text}' is not a number"


def line_of(row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    if row.get("_problem"):  # a voucher tally.py could not read
        return {}, str(row["_problem"])
    missing = [c for c in ("sku_id", "quantity") if str(row.get(c) or "").strip() == ""]
    if missing:
        return {}, f"missing {', '.join(missing)}"
    try:
        quantity = int(str(row["quantity"]).strip())
    except ValueError:
        return {}, f"quantity '{row['quantity']}' is not a whole number"
    figures: dict[str, Decimal | None] = {}
    for name in ("value", "unit_price", "taxable_value", "tax"):
        figures[name], problem = _amount(row, name)
        if problem:
            return {}, problem
    value = figures["value"]
    if value is None and figures["unit_price"] is not None:
        value = figures["unit_price"] * quantity
    if value is None:
        return {}, "missing value (or unit_price)"
    line: dict[str, Any] = {"sku_id": str(row["sku_id"]).strip(), "quantity": quantity, "value": str(value)}
    for name in ("taxable_value", "tax"):
        if figures[name] is not None:
            line[name] = str(figures[name])
    return line, None


def to_event(invoice: Invoice, actor: str, source: str) -> dict[str, Any] | Rejected:
    """The RetailerInvoiced event for an invoice, or why it cannot be sent."""
    if invoice.problems:
        return Rejected(invoice.number, invoice.rows, "; ".join(invoice.problems))
    header = invoice.header
    try:
        invoice_date = date.fromisoformat(header.get("invoice_date", ""))
    except ValueError:
        return Rejected(
            invoice.number, invoice.rows, f"invoice_date '{header.get('invoice_date', '')}' is not YYYY-MM-DD"
        )
    distributor_id = header.get("distributor_id", "")
    payload: dict[str, Any] = {
        "invoice_number": invoice.number,
        "distributor_id": distributor_id,
        "outlet_id": header.get("outlet_id", ""),
        "invoice_date": invoice_date.isoformat(),
        "order_id": header.get("order_id") or None,
        "lines": invoice.lines,
    }
    if header.get("currency"):
        payload["currency"] = header["currency"]
    event = {
        "event_id": str(event_id_for(distributor_id, invoice.number)),
        "event_type": "RetailerInvoiced",
        "occurred_at": header.get("invoiced_at") or datetime.combine(invoice_date, time(), UTC).isoformat(),
        "source": source,
        "actor": actor,
        "payload": payload,
    }
    try:
        parse_event(event)  # the contract the server applies: catch what we can before sending
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors())
        return Rejected(invoice.number, invoice.rows, reasons)
    return event
