"""The return-reversal rule (scheme_engine/domain/returns.py) on its own: rates, rounding and free goods."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from scheme_engine.domain import FreeGoods, LineBenefit, SchemeBenefit
from scheme_engine.domain.returns import RetailerReturn, reverse_returns

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def benefit(hours: int, lines: list[tuple[str, int, str]], free_units: int = 0) -> SchemeBenefit:
    """An order at T0 + hours granted `lines` of (SKU, units, discount); free goods of 2.00 a unit."""
    return SchemeBenefit(
        scheme_id="SCH",
        order_event_id=uuid.uuid4(),
        order_id=f"ORD-{hours}",
        occurred_at=T0 + timedelta(hours=hours),
        outlet_id="O1",
        distributor_id="D1",
        qualifying_units=sum(units for _, units, _ in lines),
        qualifying_value=Decimal("10.00") * sum(units for _, units, _ in lines),
        lines=tuple(
            LineBenefit(i, sku, units, Decimal("10.00") * units, Decimal(discount), Decimal(discount))
            for i, (sku, units, discount) in enumerate(lines)
        ),
        free_goods=(FreeGoods("S9", Decimal("2.00"), free_units, free_units),) if free_units else (),
    )


def returned(sku: str, units: int, hours: int, return_id: str = "R1") -> RetailerReturn:
    return RetailerReturn("D1", return_id, "O1", sku, units, T0 + timedelta(hours=hours))


def test_a_partial_return_keeps_the_rest_at_the_granted_rate_rounded_to_cents() -> None:
    (kept,) = reverse_returns([benefit(1, [("S1", 3, "1.00")])], [returned("S1", 1, 2)])
    assert (kept.qualifying_units, kept.discount_value, kept.qualifying_value) == (2, Decimal("0.67"), Decimal("20.00"))
    (gone,) = reverse_returns([benefit(1, [("S1", 3, "1.00")])], [returned("S1", 5, 2)])
    assert (gone.qualifying_units, gone.discount_value) == (0, Decimal("0.00"))  # beyond the grant: nothing more


def test_free_goods_keep_only_whole_units_their_kept_units_pay_for() -> None:
    (kept,) = reverse_returns([benefit(1, [("S1", 10, "0.00")], free_units=3)], [returned("S1", 4, 2)])
    assert (kept.free_units, kept.free_units_cost) == (1, Decimal("2.00"))  # floor(3 x 6 / 10)


def test_each_return_takes_the_newest_earlier_orders_first_and_never_the_same_unit_twice() -> None:
    old, new = benefit(1, [("S1", 4, "4.00")]), benefit(5, [("S1", 4, "4.00")])
    after_old = returned("S1", 3, 3, "R1")  # before `new` was taken: only `old` can be undone
    after_both = returned("S1", 3, 6, "R2")
    kept_old, kept_new = reverse_returns([old, new], [after_both, after_old])
    assert (kept_old.qualifying_units, kept_new.qualifying_units) == (1, 1)
    assert (kept_old.discount_value, kept_new.discount_value) == (Decimal("1.00"), Decimal("1.00"))


def test_other_skus_and_untouched_orders_are_left_as_granted() -> None:
    granted = [benefit(1, [("S1", 4, "4.00"), ("S2", 2, "1.00")])]
    (kept,) = reverse_returns(granted, [returned("S2", 2, 2)])
    assert kept.lines[0] == granted[0].lines[0]
    assert (kept.qualifying_units, kept.discount_value) == (4, Decimal("4.00"))
    assert reverse_returns(granted, []) == granted
