"""KPI projection aggregation and figure arithmetic, with hand-computed values."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from query_api.api.csv_export import to_csv
from query_api.figures.kpis import KpiRow, change_pct, figures, ratio, sum_measures
from query_api.projections.kpis import aggregate_kpi_events
from query_api.reads.kpis import KpiFilter
from sellthrough_contracts import Envelope, parse_event
from tests.support.brand import event, order

AT = datetime(2026, 10, 2, 10, 0, tzinfo=UTC)
DAY = AT.date()


def parsed(raw: dict[str, Any]) -> Envelope:
    return parse_event(raw)


def visit(productive: bool) -> Envelope:
    payload = {
        "visit_id": "V-1",
        "outlet_id": "O1",
        "distributor_id": "D1",
        "rep_id": "REP-1",
        "productive": productive,
        "no_order_reason": None if productive else "shop closed",
        "gps": None,
    }
    return parsed(event("VisitRecorded", payload, actor="REP-1", occurred_at=AT))


def test_orders_and_visits_aggregate_per_key() -> None:
    first = order("O1", [("S1", 2), ("S3", 1)], occurred_at=AT)
    second = order("O1", [("S1", 3)], occurred_at=AT)
    delivered = event(
        "OrderDelivered",
        {
            "delivery_id": "DLV-1",
            "order_id": first["payload"]["order_id"],
            "outlet_id": "O1",
            "distributor_id": "D1",
            "lines": [{"sku_id": "S1", "quantity": 1}, {"sku_id": "S1", "quantity": 1}],
        },
        actor="erp-1",
        occurred_at=datetime(2026, 10, 3, 9, 0, tzinfo=UTC),
    )
    rows = aggregate_kpi_events(
        [parsed(first), parsed(second), visit(True), visit(False), parsed(delivered)], ZoneInfo("UTC")
    )
    assert dict(rows.orders) == {(DAY, "REP-1", "O1"): [2, 3]}, "two orders, three lines"
    assert dict(rows.visits) == {(DAY, "REP-1", "O1"): [2, 1]}, "two visits, one productive"


def test_figures_from_measures() -> None:
    measures = {
        "value": Decimal("259.50"),
        "previous_value": Decimal("279.00"),
        "units": Decimal(34),
        "previous_units": Decimal(34),
        "orders": Decimal(4),
        "order_lines": Decimal(7),
        "visits": Decimal(7),
        "productive_visits": Decimal(4),
        "fill_ordered_units": Decimal(29),
        "fill_delivered_units": Decimal(23),
    }
    f = figures(measures, Decimal("519.00"), with_primary=False)
    assert (f.value_change_pct, f.units_change_pct, f.contribution_pct) == (-6.99, 0.0, 50.0)
    assert (f.lines_per_call, f.strike_rate, f.fill_rate) == (1.75, 0.5714, 0.7931)
    assert (f.primary_value, f.primary_units) == (None, None)
    assert figures(measures, Decimal(0), with_primary=True).primary_value == Decimal(0)


def test_zero_denominators_give_null_rates() -> None:
    f = figures({}, Decimal(0), with_primary=True)
    assert (f.value, f.visits, f.strike_rate, f.fill_rate, f.lines_per_call) == (Decimal(0), 0, None, None, None)
    assert (f.value_change_pct, f.contribution_pct) == (None, None)
    assert ratio(1, 0) is None
    assert change_pct(Decimal(5), Decimal(0)) is None
    assert change_pct(0, 40) == -100.0


def test_measures_sum_across_nodes() -> None:
    assert sum_measures([{"value": Decimal(1)}, {"value": Decimal(2), "visits": Decimal(3)}]) == {
        "value": Decimal(3),
        "visits": Decimal(3),
    }


def test_previous_period_has_equal_length_and_ends_the_day_before() -> None:
    f = KpiFilter(date(2026, 10, 1), date(2026, 10, 10), None, None, None)
    assert f.previous_from == date(2026, 9, 21)
    assert KpiFilter(date(2026, 3, 1), date(2026, 3, 1), None, None, None).previous_from == date(2026, 2, 28)


def test_csv_has_a_header_even_without_rows_and_identifies_rows_first() -> None:
    assert to_csv(KpiRow, []).splitlines()[0].startswith("id,name,value,units,")
    row = KpiRow(id="Z1", name='North, "upper"', **figures({"value": Decimal("1.5")}, Decimal(3), True).model_dump())
    parsed_rows = list(csv.DictReader(io.StringIO(to_csv(KpiRow, [row]))))
    assert parsed_rows[0]["name"] == 'North, "upper"'
    assert (parsed_rows[0]["contribution_pct"], parsed_rows[0]["strike_rate"]) == ("50.0", "")


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised_and_numbers_are_not() -> None:
    from decimal import Decimal as D

    from pydantic import BaseModel

    class Row(BaseModel):
        id: str
        name: str
        value: D
        units: int

    hostile = [
        Row(id="O1", name='=HYPERLINK("http://x")', value=D("-21.00"), units=-2),
        Row(id="O2", name="+1+1", value=D("5"), units=1),
        Row(id="O3", name="-cmd", value=D("5"), units=1),
        Row(id="O4", name="@SUM(A1)", value=D("5"), units=1),
        Row(id="O5", name="\tTab", value=D("5"), units=1),
        Row(id="O6", name="\rCR", value=D("5"), units=1),
        Row(id="O7", name="Plain shop", value=D("5"), units=1),
    ]
    parsed_rows = list(csv.DictReader(io.StringIO(to_csv(Row, hostile), newline="")))
    assert [r["name"] for r in parsed_rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-cmd",
        "'@SUM(A1)",
        "'\tTab",
        "'\rCR",
        "Plain shop",
    ]
    assert (parsed_rows[0]["value"], parsed_rows[0]["units"]) == ("-21.00", "-2")
