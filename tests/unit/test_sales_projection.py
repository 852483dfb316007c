from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from query_api.sales import aggregate_orders
from sellthrough_contracts import parse_event
from sellthrough_contracts.trade import OrderCaptured
from tests.support.brand import order


def captured(outlet: str, lines: list[tuple[str, int]], at: datetime) -> OrderCaptured:
    event = parse_event(order(outlet, lines, occurred_at=at))
    assert isinstance(event, OrderCaptured)
    return event


def test_orders_sum_per_business_day_outlet_and_sku() -> None:
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    totals = aggregate_orders(
        [captured("O1", [("S1", 2), ("S3", 1)], at), captured("O1", [("S1", 3)], at)], ZoneInfo("UTC")
    )
    day = at.date()
    assert totals == {
        (day, "O1", "S1"): (Decimal("52.50"), 5, 2),
        (day, "O1", "S3"): (Decimal("7.25"), 1, 1),
    }


def test_the_business_day_follows_the_brand_time_zone_not_utc() -> None:
    late_evening_in_india = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)  # 00:30 on the 21st in Kolkata
    totals = aggregate_orders([captured("O1", [("S1", 1)], late_evening_in_india)], ZoneInfo("Asia/Kolkata"))
    assert [key[0].isoformat() for key in totals] == ["2026-11-21"]
