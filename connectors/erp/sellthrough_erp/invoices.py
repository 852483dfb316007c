"""Reading a primary-invoice export into PrimaryInvoiced events. Pure: no I/O beyond reading the file.

CSV: one row per invoice line, with a header row. Columns (any order; extra columns are ignored):
    invoice_number  ERP invoice number; the idempotency key (re-importing an invoice is harmless)
    invoice_date    YYYY-MM-DD
    distributor_id  the distributor invoiced
    sku_id          the SKU
    quantity        units, a whole number > 0
    unit_price      price per unit, e.g. 41.50
    invoiced_at     optional: ISO 8601 timestamp with a zone, when the invoice was posted (default: midnight
                    UTC of invoice_date)
    taxable_value   optional, with tax: the line's value before GST (taxable_value + tax = quantity x unit_price)
    tax             optional, with taxable_value: the line's GST
    currency        optional: ISO 4217 code of the invoice's amounts (default: the brand's; another is refused)
JSON: either a list of such row objects, or a list of invoices: {"invoice_number", "invoice_date",
"distributor_id", "invoiced_at"?, "lines": [{"sku_id", "quantity", "unit_price"}]}.

A bad row makes its whole invoice rejected (posting the invoice without it would misstate it); every other
invoice goes ahead.
"""

import csv
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sellthrough_contracts import parse_event

REQUIRED_COLUMNS = ("invoice_number", "invoice_date", "distributor_id", "sku_id", "quantity", "unit_price")
HEADER_FIELDS = ("invoice_date", "distributor_id", "invoiced_at", "currency")
TAX_COLUMNS = ("taxable_value", "tax")
NAMESPACE = uuid.UUID("0b6f4a8e-3f0c-4c55-9d3f-6a0d2b7e9c41")


class ExportError(Exception):
    """The file as a whole cannot be read (missing columns, not CSV/JSON)."""


@dataclass
class Invoice:
    number: str
    rows: list[int] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rejected:
    invoice_number: str
    rows: list[int]
    reason: str


def event_id_for(invoice_number: str) -> uuid.UUID:
    """Same invoice number, same event id: the server treats a re-import as a duplicate."""
    return uuid.uuid5(NAMESPACE, f"PrimaryInvoiced:{invoice_number}")


Line = Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]]
"""A row's invoice line, or why it cannot be one."""


def read_rows(path: Path, required: Sequence[str] = REQUIRED_COLUMNS) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number as a person counts it in the file, row) for CSV or JSON exports."""
    if path.suffix.lower() == ".json":
        yield from _json_rows(path)
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ExportError(f"{path.name}: missing columns {', '.join(missing)} (needs {', '.join(required)})")
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            yield number, {k: (v or "").strip() for k, v in row.items() if k}


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ExportError(f"{path.name}: not valid JSON ({error})") from None
    if not isinstance(document, list):
        raise ExportError(f"{path.name}: expected a JSON list of invoices or invoice lines")
    number = 0
    for item in document:
        if isinstance(item, dict) and isinstance(item.get("lines"), list):
            header = {k: v for k, v in item.items() if k != "lines"}
            for line in item["lines"]:
                number += 1
                yield number, {**header, **(line if isinstance(line, dict) else {"_invalid": line})}
        else:
            number += 1
            yield number, item if isinstance(item, dict) else {"_invalid": item}


def group_invoices(
    rows: Iterable[tuple[int, dict[str, Any]]],
    header_fields: Sequence[str] = HEADER_FIELDS,
    line_of: Line | None = None,
    scope: str | None = None,
) -> list[Invoice]:
    """Rows grouped into invoices by invoice number (and by the `scope` column too when given: a distributor's
    invoice numbers are unique only per distributor); `header_fields` must agree on every row of an invoice."""
    invoices: dict[tuple[str, str], Invoice] = {}
    orphans: list[Invoice] = []
    for number, row in rows:
        invoice_number = str(row.get("invoice_number") or "").strip()
        if not invoice_number:
            orphans.append(Invoice(f"(row {number})", [number], problems=[f"row {number}: no invoice_number"]))
            continue
        key = (str(row.get(scope) or "").strip() if scope else "", invoice_number)
        invoice = invoices.setdefault(key, Invoice(invoice_number))
        invoice.rows.append(number)
        for name in header_fields:
            value = str(row.get(name) or "").strip()
            if value and invoice.header.setdefault(name, value) != value:
                invoice.problems.append(
                    f"row {number}: {name} '{value}' differs from '{invoice.header[name]}' on the same invoice"
                )
        line, problem = (line_of or _line)(row)
        if problem:
            invoice.problems.append(f"row {number}: {problem}")
        else:
            invoice.lines.append(line)
    return [*invoices.values(), *orphans]


def _line(row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    if row.get("_problem"):  # a voucher tally.py could not read
        return {}, str(row["_problem"])
    missing = [c for c in ("sku_id", "quantity", "unit_price") if str(row.get(c) or "").strip() == ""]
    if missing:
        return {}, f"missing {', '.join(missing)}"
    try:
        quantity = int(str(row["quantity"]).strip())
    except ValueError:
        return {}, f"quantity '{row['quantity']}' is not a whole number"
    try:
        price = Decimal(str(row["unit_price"]).strip())
    except InvalidOperation:
        return {}, f"unit_price '{row['unit_price']}' is not a number"
    line: dict[str, Any] = {"sku_id": str(row["sku_id"]).strip(), "quantity": quantity, "unit_price": str(price)}
    for column in TAX_COLUMNS:  # optional: an export without GST columns, or with a blank cell, has no split
        if (cell := str(row.get(column) or "").strip()) != "":
            try:
                line[column] = str(Decimal(cell))
            except InvalidOperation:
                return {}, f"{column} '{cell}' is not a number"
    return line, None


def to_event(invoice: Invoice, actor: str, source: str) -> dict[str, Any] | Rejected:
    """The PrimaryInvoiced event for an invoice, or why it cannot be sent."""
    if invoice.problems:
        return Rejected(invoice.number, invoice.rows, "; ".join(invoice.problems))
    try:
        invoice_date = date.fromisoformat(invoice.header.get("invoice_date", ""))
    except ValueError:
        return Rejected(
            invoice.number, invoice.rows, f"invoice_date '{invoice.header.get('invoice_date', '')}' is not YYYY-MM-DD"
        )
    occurred_at = invoice.header.get("invoiced_at") or datetime.combine(invoice_date, time(), UTC).isoformat()
    payload: dict[str, Any] = {
        "invoice_number": invoice.number,
        "distributor_id": invoice.header.get("distributor_id", ""),
        "invoice_date": invoice_date.isoformat(),
        "lines": invoice.lines,
    }
    if currency := invoice.header.get("currency"):
        payload["currency"] = currency
    event = {
        "event_id": str(event_id_for(invoice.number)),
        "event_type": "PrimaryInvoiced",
        "occurred_at": occurred_at,
        "source": source,
        "actor": actor,
        "payload": payload,
    }
    try:
        parse_event(event)  # the same contract the server applies: catch what we can before sending
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors())
        return Rejected(invoice.number, invoice.rows, reasons)
    return event
