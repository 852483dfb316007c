"""Tally's XML voucher export read as invoice rows, the same rows a CSV export gives (invoices.py for
PrimaryInvoiced, retailer.py for RetailerInvoiced). Pure: no I/O beyond reading the file.

Parsed with defusedxml: an uploaded file is untrusted, and the stdlib parser expands entities (billion laughs).
What is read, under ENVELOPE/BODY/IMPORTDATA/REQUESTDATA/TALLYMESSAGE/VOUCHER (Day Book exports put the messages
under BODY/DATA or BODY/EXPORTDATA/REQUESTDATA instead; any TALLYMESSAGE/VOUCHER is taken):
    VOUCHERTYPENAME  Sales (the seller's books: its invoices) or Purchase (the buyer's books); other types
                     (Receipt, Journal, Credit Note, ...) are not invoices and are skipped
    DATE             yyyymmdd
    VOUCHERNUMBER    the invoice number
    PARTYLEDGERNAME  the other party: the retailer (a distributor's Sales) or the distributor (the brand's Sales),
                     through the names file, or as it is when it is already an id
    REFERENCE        the order it fulfils (else INVOICEORDERLIST.LIST/BASICPURCHASEORDERNO, Tally's "Order No")
    ISCANCELLED / ISOPTIONAL  Yes: not an invoice, skipped
    ALLINVENTORYENTRIES.LIST or INVENTORYENTRIES.LIST, one per line: STOCKITEMNAME (through the names file),
    ACTUALQTY ("10 Nos"; BILLEDQTY if absent), RATE ("50.00/Nos"), AMOUNT (the line's value before tax)
    LEDGERENTRIES.LIST / ALLLEDGERENTRIES.LIST: the GST ledgers (names with GST or CESS in them) give the tax,
    spread over the lines in proportion to their value.
Signs: Tally writes a credit positive and a debit negative, so a Sales voucher's item amounts are positive and its
party amount negative, and a Purchase voucher the other way round. Amounts and quantities are taken as their
magnitudes; an item line whose sign is the other one (a return line inside the voucher) makes the voucher
rejected rather than guessed at.

Each voucher becomes rows numbered as the voucher's position in the file (row N = the Nth voucher), so the reject
report points at it.
"""

import csv
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from sellthrough_erp.invoices import ExportError

INVOICE_TYPES = ("Sales", "Purchase")
_TAX_LEDGER = re.compile(r"GST|CESS", re.IGNORECASE)
# Tally writes control characters as character references (`&#4; Primary` in group names), which XML 1.0 forbids.
_CONTROL_REFERENCE = re.compile(r"&#(?:x0*[0-8bBcCeEfF]|x0*1[0-9a-fA-F]|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]));")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Skipped:
    voucher: int
    number: str
    why: str


def read_names(path: Path | None) -> dict[str, str]:
    """A names file: CSV with columns tally_name,id mapping Tally's ledger and stock item names to Sellthrough ids
    (outlets, distributors, SKUs). Names not in it are used as they are."""
    if path is None:
        return {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not {"tally_name", "id"} <= set(reader.fieldnames or []):
            raise ExportError(f"{path.name}: a names file needs the columns tally_name,id")
        return {row["tally_name"].strip(): row["id"].strip() for row in reader if row.get("tally_name")}


def _document(path: Path) -> Element:
    raw = path.read_bytes()
    # Tally exports UTF-16 (with a byte-order mark) or UTF-8; the declaration may say either.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8-sig", errors="replace")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # decoded already: the declared encoding no longer applies
    text = _CONTROL_REFERENCE.sub("", text)
    try:
        root: Element = SafeTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as error:
        raise ExportError(f"{path.name}: refused ({type(error).__name__}: entities or a DTD in the file)") from None
    except SafeTree.ParseError as error:
        raise ExportError(f"{path.name}: not well-formed XML ({error})") from None
    if root.tag != "ENVELOPE":
        raise ExportError(f"{path.name}: not a Tally export (root element {root.tag}, expected ENVELOPE)")
    return root


def _text(element: Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _decimal(text: str) -> Decimal | None:
    match = _NUMBER.search(text)
    if match is None:
        return None
    try:
        return Decimal(match.group().replace(",", ""))
    except InvalidOperation:
        return None


def _quantity(text: str) -> tuple[int | None, str | None]:
    """ "10 Nos" -> 10; " 24 Nos = 2 Box" (alternate units) -> 24, the first (base) unit's quantity."""
    amount = _decimal(text)
    if amount is None:
        return None, f"quantity '{text}' has no number"
    amount = abs(amount)
    if amount != amount.to_integral_value():
        return None, f"quantity '{text}' is not a whole number of units"
    return int(amount), None


def vouchers(path: Path) -> Iterator[Element]:
    for message in _document(path).iter("TALLYMESSAGE"):
        yield from message.findall("VOUCHER")


def _voucher_type(voucher: Element) -> str:
    return _text(voucher, "VOUCHERTYPENAME") or voucher.get("VCHTYPE", "")


def _order_reference(voucher: Element) -> str:
    reference = _text(voucher, "REFERENCE")
    if reference:
        return reference
    for order in voucher.iter("INVOICEORDERLIST.LIST"):
        if number := _text(order, "BASICPURCHASEORDERNO"):
            return number
    return ""


def _spread(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total` in proportion to `weights`, rounded to paise, the rounding left on the last line: they sum to it."""
    whole = sum(weights)
    if not weights or whole == 0:
        return [Decimal(0) for _ in weights]
    shares = [(total * w / whole).quantize(CENT, ROUND_HALF_UP) for w in weights[:-1]]
    return [*shares, total - sum(shares)]


def voucher_rows(
    voucher: Element, names: Mapping[str, str], distributor_id: str | None, party_is: str
) -> tuple[list[dict[str, Any]], str | None]:
    """One voucher's rows (one per inventory line) in the CSV columns, or why the voucher cannot be read.
    `party_is`: the column the party ledger fills (outlet_id for a distributor's Sales, distributor_id for the
    brand's Sales); `distributor_id`: the distributor whose books these are, when the file is a distributor's."""
    kind = _voucher_type(voucher)
    selling = kind == "Sales"
    party = _text(voucher, "PARTYLEDGERNAME")
    header: dict[str, Any] = {
        "invoice_number": _text(voucher, "VOUCHERNUMBER"),
        "invoice_date": _tally_date(_text(voucher, "DATE")),
        party_is: names.get(party, party),
    }
    if distributor_id and party_is != "distributor_id":
        header["distributor_id"] = distributor_id
    if not header["invoice_number"]:
        return [], "no VOUCHERNUMBER"
    if not party:
        return [], "no PARTYLEDGERNAME"
    if reference := _order_reference(voucher):
        header["order_id"] = reference
    items = [*voucher.findall("ALLINVENTORYENTRIES.LIST"), *voucher.findall("INVENTORYENTRIES.LIST")]
    if not items:
        return [], "no inventory lines (ALLINVENTORYENTRIES.LIST): an accounting-only voucher is not an invoice"
    lines: list[dict[str, Any]] = []
    for n, item in enumerate(items, start=1):
        name = _text(item, "STOCKITEMNAME")
        quantity, problem = _quantity(_text(item, "ACTUALQTY") or _text(item, "BILLEDQTY"))
        if problem or quantity is None:
            return [], f"line {n} ({name}): {problem}"
        amount = _decimal(_text(item, "AMOUNT"))
        rate = _decimal(_text(item, "RATE"))
        if amount is None and rate is None:
            return [], f"line {n} ({name}): neither AMOUNT nor RATE"
        if amount is not None and amount != 0 and (amount > 0) != selling:
            return [], f"line {n} ({name}): AMOUNT {amount} has the sign of a return in a {kind} voucher"
        value = abs(amount) if amount is not None else abs(rate or Decimal(0)) * quantity
        lines.append({"sku_id": names.get(name, name), "quantity": quantity, "taxable_value": value, "rate": rate})
    tax = sum(
        (
            abs(_decimal(_text(entry, "AMOUNT")) or Decimal(0))
            for tag in ("LEDGERENTRIES.LIST", "ALLLEDGERENTRIES.LIST")
            for entry in voucher.findall(tag)
            if _TAX_LEDGER.search(_text(entry, "LEDGERNAME"))
        ),
        Decimal(0),
    )
    shares = _spread(tax, [line["taxable_value"] for line in lines])
    rows = []
    for line, share in zip(lines, shares, strict=True):
        taxable = line["taxable_value"]
        # A primary invoice's unit_price is tax-included (PrimaryInvoiced v2: taxable_value + tax = quantity x
        # unit_price), so Tally's RATE (before tax) is not it: the line's value with its tax share, per unit.
        unit_price = (taxable + share) / line["quantity"]
        rows.append(
            {
                **header,
                "sku_id": line["sku_id"],
                "quantity": str(line["quantity"]),
                "value": str(taxable + share),
                "taxable_value": str(taxable),
                "tax": str(share),
                "unit_price": str(abs(unit_price).quantize(Decimal("0.0001"))),
            }
        )
    return rows, None


def _tally_date(text: str) -> str:
    """yyyymmdd -> YYYY-MM-DD (anything else is passed on, and rejected with the invoice)."""
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if re.fullmatch(r"\d{8}", text) else text


def tally_rows(
    path: Path, names: Mapping[str, str], distributor_id: str | None, party_is: str, voucher_type: str
) -> tuple[list[tuple[int, dict[str, Any]]], list[Skipped]]:
    """Rows of the vouchers of `voucher_type` (Sales or Purchase) in the file, numbered by voucher, and the
    vouchers skipped (other types, cancelled, optional). A voucher that cannot be read gives one row with the
    problem in `_problem`, so it is rejected with its number."""
    rows: list[tuple[int, dict[str, Any]]] = []
    skipped: list[Skipped] = []
    for position, voucher in enumerate(vouchers(path), start=1):
        number = _text(voucher, "VOUCHERNUMBER")
        kind = _voucher_type(voucher)
        if kind != voucher_type:
            skipped.append(Skipped(position, number, f"a {kind or 'untyped'} voucher, not {voucher_type}"))
            continue
        if "Yes" in (_text(voucher, "ISCANCELLED"), _text(voucher, "ISOPTIONAL")) or voucher.get("ACTION") == "Delete":
            skipped.append(Skipped(position, number, "cancelled, optional or deleted in Tally"))
            continue
        voucher_lines, problem = voucher_rows(voucher, names, distributor_id, party_is)
        if problem:
            rows.append((position, {"invoice_number": number or f"(voucher {position})", "_problem": problem}))
        else:
            rows.extend((position, row) for row in voucher_lines)
    return rows, skipped
