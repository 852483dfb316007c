from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from query_api.sales import aggregate_orders
from sellthrough_contracts import parse_event
from sellthrough_contracts.trade import OrderCaptured
from tests.support.brand import order


def captured(outlet: str, lines: list[tuple[str, int]], at: datetime, rep: str | None = None) -> OrderCaptured:
    event = parse_event(order(outlet, lines, occurred_at=at, rep_id=rep))
    assert isinstance(event, OrderCaptured)
    return event


def test_orders_sum_per_business_day_outlet_sku_and_rep() -> None:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    orders = [
        captured("O1", [("S1", 2), ("S3", 1)], at),
        captured("O1", [("S1", 3)], at),
        captured("O1", [("S1", 1)], at, rep="REP-9"),  # a second rep calling on the same outlet that day
    ]
    totals = aggregate_orders(orders, ZoneInfo("UTC"))
    day = at.date()
    assert totals == {
        (day, "O1", "S1", "REP-1"): (Decimal("52.50"), 5, 2),  # (2 + 3) x 10.50, two lines
        (day, "O1", "S3", "REP-1"): (Decimal("7.25"), 1, 1),
        (day, "O1", "S1", "REP-9"): (Decimal("10.50"), 1, 1),
    }


def test_the_business_day_follows_the_brand_time_zone_not_utc() -> None:
    late_evening_in_india = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)  # 00:30 on the 21st in Kolkata
    totals = aggregate_orders([captured("O1", [("S1", 1)], late_evening_in_india)], ZoneInfo("Asia/Kolkata"))
    assert [key[0].isoformat() for key in totals] == ["2026-11-21"]
