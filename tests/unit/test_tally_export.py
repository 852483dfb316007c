"""Tally XML voucher exports read as invoices: the distributor's Sales vouchers as RetailerInvoiced, the brand's as
PrimaryInvoiced; signs, units, GST spread over lines, skipped vouchers, hostile XML, and a distributor CSV."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sellthrough_erp import invoices, retailer
from sellthrough_erp.invoices import ExportError, Rejected, group_invoices
from sellthrough_erp.tally import read_names, tally_rows

FIXTURES = Path(__file__).parent.parent / "fixtures" / "tally"
NAMES = read_names(FIXTURES / "names.csv")


def retailer_events(path: Path, distributor: str = "D1") -> tuple[list[dict[str, Any] | Rejected], list[Any]]:
    rows, skipped = tally_rows(path, NAMES, distributor, "outlet_id", "Sales")
    grouped = group_invoices(rows, retailer.HEADER_FIELDS, retailer.line_of, scope="distributor_id")
    return [retailer.to_event(invoice, "dms-d1", "tally") for invoice in grouped], skipped


def test_a_distributors_sales_vouchers_become_retailer_invoices() -> None:
    events, skipped = retailer_events(FIXTURES / "distributor-sales.xml")
    assert [s.why for s in skipped] == ["a Receipt voucher, not Sales", "cancelled, optional or deleted in Tally"]
    first, second = events
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["event_type"] == "RetailerInvoiced"
    assert first["event_id"] == str(retailer.event_id_for("D1", "SV/26-27/0001"))
    assert first["occurred_at"] == "2026-12-01T00:00:00+00:00"
    p = first["payload"]
    assert (p["distributor_id"], p["outlet_id"], p["order_id"], p["invoice_date"]) == (
        "D1",
        "O1",
        "ORD-TALLY-1",
        "2026-12-01",
    )
    # 24.12 of GST (CGST + SGST) spread over 105.00 and 29.00 of taxable value, to the paisa, summing to it.
    assert p["lines"] == [
        {"sku_id": "S1", "quantity": 10, "value": "123.90", "taxable_value": "105.00", "tax": "18.90"},
        {"sku_id": "S3", "quantity": 4, "value": "34.22", "taxable_value": "29.00", "tax": "5.22"},
    ]
    assert sum(Decimal(line["value"]) for line in p["lines"]) == Decimal("158.12")  # the party ledger's amount
    assert second["payload"]["order_id"] is None  # no REFERENCE: a sale without a rep's order
    assert second["payload"]["lines"] == [
        {"sku_id": "S2", "quantity": 6, "value": "26.88", "taxable_value": "24.00", "tax": "2.88"}
    ]


def test_the_brands_sales_vouchers_become_primary_invoices_and_a_return_line_is_rejected() -> None:
    rows, skipped = tally_rows(FIXTURES / "brand-sales.xml", NAMES, None, "distributor_id", "Sales")
    assert skipped == []
    first, second = [invoices.to_event(invoice, "erp-1", "tally") for invoice in group_invoices(rows)]
    assert isinstance(first, dict)
    assert first["event_id"] == str(invoices.event_id_for("BR/26-27/0101"))
    assert first["payload"] == {
        "invoice_number": "BR/26-27/0101",
        "distributor_id": "D1",
        "invoice_date": "2026-11-30",
        "lines": [
            # RATE 8.00 before tax; 18% GST (144.00 on the voucher) spread by value: the unit price is tax-included.
            {"sku_id": "S1", "quantity": 100, "unit_price": "9.4400", "taxable_value": "800.00", "tax": "144.00"},
            {"sku_id": "S1", "quantity": 50, "unit_price": "9.4400", "taxable_value": "400.00", "tax": "72.00"},
        ],
    }
    assert isinstance(second, Rejected)
    assert second.rows == [2]  # the second voucher of the file
    assert "has the sign of a return in a Sales voucher" in second.reason


def test_purchase_vouchers_are_the_distributors_books(tmp_path: Path) -> None:
    text = (FIXTURES / "brand-sales.xml").read_text()
    purchase = text.replace("<VOUCHERTYPENAME>Sales", "<VOUCHERTYPENAME>Purchase").replace(
        "<AMOUNT>800.00", "<AMOUNT>-800.00"
    )
    path = tmp_path / "purchase.xml"
    path.write_text(purchase.replace("<AMOUNT>400.00", "<AMOUNT>-400.00"))
    rows, _ = tally_rows(path, NAMES, "D2", "supplier", "Purchase")
    first = invoices.to_event(group_invoices(rows)[0], "erp-1", "tally")
    assert isinstance(first, dict)
    assert first["payload"]["distributor_id"] == "D2"
    assert [line["quantity"] for line in first["payload"]["lines"]] == [100, 50]


def test_a_utf16_export_with_a_bom_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "utf16.xml"
    text = (FIXTURES / "distributor-sales.xml").read_text()
    path.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert retailer_events(path) == retailer_events(FIXTURES / "distributor-sales.xml")


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            "<ENVELOPE>&lol2;</ENVELOPE>",
            "refused",
        ),
        ("<ENVELOPE><BODY>", "not well-formed XML"),
        ("<html/>", "not a Tally export"),
    ],
)
def test_hostile_or_foreign_xml_is_refused_whole(tmp_path: Path, xml: str, message: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(xml)
    with pytest.raises(ExportError, match=message):
        tally_rows(path, NAMES, "D1", "outlet_id", "Sales")


@pytest.mark.parametrize(
    ("replace", "by", "reason"),
    [
        ("<ACTUALQTY> 6 Nos", "<ACTUALQTY> 6.5 Kg", "quantity '6.5 Kg' is not a whole number of units"),
        ("<DATE>20261202</DATE>", "<DATE>2-12-2026</DATE>", "invoice_date '2-12-2026' is not YYYY-MM-DD"),
        ("Gupta Kirana</PARTYLEDGERNAME>", "Gupta Kirana (old)</PARTYLEDGERNAME>", "outlet_id"),
    ],
)
def test_a_voucher_that_cannot_be_read_is_rejected_with_its_position(
    tmp_path: Path, replace: str, by: str, reason: str
) -> None:
    path = tmp_path / "one-bad.xml"
    path.write_text((FIXTURES / "distributor-sales.xml").read_text().replace(replace, by, 1))
    events, _ = retailer_events(path)
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert len(events) == 2, events
    assert len(rejected) == 1, events
    assert rejected[0].rows == [2]
    assert reason in rejected[0].reason


def test_a_dms_csv_groups_per_distributor_and_invoice(tmp_path: Path) -> None:
    export = tmp_path / "dms.csv"
    export.write_text(
        "invoice_number,invoice_date,distributor_id,outlet_id,order_id,sku_id,quantity,value,taxable_value,tax\n"
        "B-1,2026-12-01,D1,O1,ORD-9,S1,10,123.90,105.00,18.90\n"
        "B-1,2026-12-01,D1,O1,ORD-9,S3,4,34.22,,\n"
        "B-1,2026-12-01,D2,O3,,S2,2,8.00,,\n"
        "B-2,2026-12-01,D1,O2,,S2,x,8.00,,\n"
    )
    rows = list(invoices.read_rows(export, retailer.REQUIRED_COLUMNS))
    grouped = group_invoices(rows, retailer.HEADER_FIELDS, retailer.line_of, scope="distributor_id")
    d1, d2, bad = (retailer.to_event(invoice, "dms-1", "dms") for invoice in grouped)
    assert isinstance(d1, dict)
    assert isinstance(d2, dict)
    assert d1["payload"]["order_id"] == "ORD-9"
    assert d1["payload"]["lines"][1] == {"sku_id": "S3", "quantity": 4, "value": "34.22"}
    assert d2["payload"]["distributor_id"] == "D2"
    assert d2["payload"]["order_id"] is None
    assert d1["event_id"] != d2["event_id"]  # the same number at two distributors: two invoices
    assert isinstance(bad, Rejected)
    assert "quantity 'x' is not a whole number" in bad.reason
