"""Stock turn and days of inventory (figures/stock_turn.py), by hand."""

from query_api.figures.stock_turn import Turn, stock_turn


def test_turn_and_days_of_inventory() -> None:
    # 100 at the start, 190 at the end, 10 sold in 10 days: average 145, turn 10 / 145, 145 days of inventory.
    assert stock_turn(100, 190, 10, 10) == Turn(145.0, 0.069, 145.0)
    # Sold through twice in 30 days: 15 days of inventory.
    assert stock_turn(50, 50, 100, 30) == Turn(50.0, 2.0, 15.0)


def test_no_stock_or_no_sales_is_null_not_zero_or_infinite() -> None:
    assert stock_turn(0, 0, 5, 10) == Turn(0.0, None, None)  # sold without stock: no turn
    assert stock_turn(0, -5, 5, 10) == Turn(-2.5, None, None)  # negative book stock
    assert stock_turn(40, 40, 0, 10) == Turn(40.0, 0.0, None)  # nothing sold: turn 0, no days of inventory
