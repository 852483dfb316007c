"""Stock turn and days of inventory of a distributor's stock of a SKU over a period (README, "Stock turn").

    average stock     = (opening + closing) / 2              book stock at the period's ends, in units
    stock turn        = secondary units out / average stock   times the stock was sold through in the period
    days of inventory = days x average stock / units out      how many days the average stock lasts at that pace

Units out are the net secondary sales that left the distributor (reads/reconciliation.py: open orders at capture,
delivered units at delivery, never a cancelled order). A turn needs stock (an average above zero) and days of
inventory need sales; otherwise they are null, not zero or infinite.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    average_stock: float
    stock_turn: float | None
    days_of_inventory: float | None


def stock_turn(opening: int, closing: int, units_out: int, days: int) -> Turn:
    average = (opening + closing) / 2
    turn = round(units_out / average, 4) if average > 0 else None
    days_of_inventory = round(days * average / units_out, 2) if units_out > 0 and average > 0 else None
    return Turn(average, turn, days_of_inventory)
