import json
from pathlib import Path

import pytest

from sellthrough_erp.invoices import ExportError, Rejected, event_id_for, group_invoices, read_rows, to_event

HEADER = "invoice_number,invoice_date,distributor_id,sku_id,quantity,unit_price\n"


def events_from(path: Path) -> list[dict[str, object] | Rejected]:
    return [to_event(invoice, "erp-1", "test") for invoice in group_invoices(read_rows(path))]


def test_rows_group_into_invoices_with_a_stable_event_id(tmp_path: Path) -> None:
    export = tmp_path / "inv.csv"
    export.write_text(
        HEADER + "INV-1,2026-11-20,D1,S1,100,8.00\nINV-1,2026-11-20,D1,S2,20,4.5\nINV-2,2026-11-21,D2,S1,5,8\n"
    )
    first, second = events_from(export)
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["payload"]["lines"] == [  # type: ignore[index]
        {"sku_id": "S1", "quantity": 100, "unit_price": "8.00"},
        {"sku_id": "S2", "quantity": 20, "unit_price": "4.5"},
    ]
    assert first["event_id"] == str(event_id_for("INV-1"))
    assert first["occurred_at"] == "2026-11-20T00:00:00+00:00"
    assert second["payload"]["distributor_id"] == "D2"  # type: ignore[index]


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ("INV-1,2026-11-20,D1,S1,ten,8.00\n", "row 2: quantity 'ten' is not a whole number"),
        ("INV-1,2026-11-20,D1,S1,10,\n", "row 2: missing unit_price"),
        ("INV-1,2026-11-20,D1,S1,10,8\nINV-1,2026-11-20,D9,S2,1,8\n", "row 3: distributor_id 'D9' differs"),
        ("INV-1,20/11/2026,D1,S1,10,8\n", "invoice_date '20/11/2026' is not YYYY-MM-DD"),
        ("INV-1,2026-11-20,D1,S1,0,8\n", "lines.0.quantity: Input should be greater than 0"),
        (",2026-11-20,D1,S1,1,8\n", "row 2: no invoice_number"),
    ],
)
def test_a_bad_row_rejects_its_invoice_with_the_row_and_reason_and_others_go_ahead(
    tmp_path: Path, rows: str, reason: str
) -> None:
    export = tmp_path / "inv.csv"
    export.write_text(HEADER + rows + "INV-OK,2026-11-20,D1,S1,1,8\n")
    outcomes = events_from(export)
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    good = [o for o in outcomes if isinstance(o, dict)]
    assert len(rejected) == 1
    assert reason in rejected[0].reason
    assert [g["payload"]["invoice_number"] for g in good] == ["INV-OK"]  # type: ignore[index]


def test_json_exports_nested_or_flat(tmp_path: Path) -> None:
    nested = tmp_path / "nested.json"
    nested.write_text(
        json.dumps(
            [
                {
                    "invoice_number": "INV-9",
                    "invoice_date": "2026-11-01",
                    "distributor_id": "D1",
                    "lines": [{"sku_id": "S1", "quantity": 3, "unit_price": "2"}],
                }
            ]
        )
    )
    flat = tmp_path / "flat.json"
    flat.write_text(
        json.dumps(
            [
                {
                    "invoice_number": "INV-9",
                    "invoice_date": "2026-11-01",
                    "distributor_id": "D1",
                    "sku_id": "S1",
                    "quantity": 3,
                    "unit_price": "2",
                }
            ]
        )
    )
    assert events_from(nested) == events_from(flat)


def test_an_export_without_the_required_columns_is_refused_whole(tmp_path: Path) -> None:
    export = tmp_path / "inv.csv"
    export.write_text("invoice,date\nINV-1,2026-11-20\n")
    with pytest.raises(ExportError, match="missing columns invoice_number, invoice_date"):
        list(read_rows(export))


def test_gst_columns_and_currency_are_read_when_the_export_has_them(tmp_path: Path) -> None:
    export = tmp_path / "gst.csv"
    export.write_text(
        "invoice_number,invoice_date,distributor_id,sku_id,quantity,unit_price,taxable_value,tax,currency\n"
        "INV-1,2026-11-20,D1,S1,10,11.80,100.00,18.00,INR\n"
        "INV-1,2026-11-20,D1,S2,1,5,,,INR\n"
        "INV-2,2026-11-20,D1,S1,10,11.80,100.00,17.00,INR\n"
    )
    first, second = events_from(export)
    assert isinstance(first, dict)
    assert first["payload"]["currency"] == "INR"  # type: ignore[index]
    assert first["payload"]["lines"] == [  # type: ignore[index]
        {"sku_id": "S1", "quantity": 10, "unit_price": "11.80", "taxable_value": "100.00", "tax": "18.00"},
        {"sku_id": "S2", "quantity": 1, "unit_price": "5"},
    ]
    assert isinstance(second, Rejected)  # 100 + 17 is not 10 x 11.80: refused before it is sent
    assert "not the line's value" in second.reason
