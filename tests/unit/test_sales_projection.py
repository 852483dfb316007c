from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from query_api.projections.sales import prepare_sales
from sellthrough_contracts import Envelope, parse_event
from tests.support.brand import event, order


def parsed(raw: dict[str, Any]) -> Envelope:
    return parse_event(raw)


def rows(document: str | None) -> list[list[Any]]:
    assert document is not None
    return list(orjson.loads(document))


def test_an_order_becomes_one_row_per_sku_with_its_units_value_and_lines() -> None:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    captured = parsed(order("O1", [("S1", 2), ("S3", 1), ("S1", 3)], occurred_at=at))
    writes = prepare_sales([captured], ZoneInfo("UTC"))
    assert writes is not None
    [header] = rows(writes.orders)
    assert header[:6] == ["D1", captured.payload.order_id, str(captured.event_id), "O1", "REP-1", "2026-11-20"]  # type: ignore[attr-defined]
    by_sku = {r[3]: (r[4], Decimal(r[5]), r[6]) for r in rows(writes.order_skus)}
    assert by_sku == {"S1": (5, Decimal("52.50"), 2), "S3": (1, Decimal("7.25"), 1)}  # S1 listed twice: summed
    assert writes.cancellations is None
    assert writes.returns is None


def test_the_business_day_follows_the_brand_time_zone_not_utc() -> None:
    late_evening_in_india = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)  # 00:30 on the 21st in Kolkata
    writes = prepare_sales(
        [parsed(order("O1", [("S1", 1)], occurred_at=late_evening_in_india))], ZoneInfo("Asia/Kolkata")
    )
    assert writes is not None
    assert [r[5] for r in rows(writes.orders)] == ["2026-11-21"]


def test_events_that_do_not_change_sales_prepare_nothing() -> None:
    visit = event(
        "VisitRecorded",
        {"visit_id": "V1", "outlet_id": "O1", "distributor_id": "D1", "rep_id": "REP-1", "productive": False},
    )
    assert prepare_sales([parsed(visit)], ZoneInfo("UTC")) is None


def test_a_return_is_placed_on_the_day_it_was_recorded_with_its_reason() -> None:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    returned = event(
        "ReturnRecorded",
        {
            "return_id": "RET-1",
            "distributor_id": "D1",
            "outlet_id": "O1",
            "direction": "from_retailer",
            "reason": "expired",
            "lines": [{"sku_id": "S1", "quantity": 2}, {"sku_id": "S1", "quantity": 1}],
        },
        occurred_at=at,
    )
    writes = prepare_sales([parsed(returned)], ZoneInfo("UTC"))
    assert writes is not None
    [header] = rows(writes.returns)
    assert header[3:7] == ["O1", "from_retailer", "expired", "2026-11-20"]
    assert [r[3:] for r in rows(writes.return_lines)] == [["S1", 3]]
