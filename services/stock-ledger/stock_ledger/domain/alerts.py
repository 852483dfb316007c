"""Stock alerts from a position and recent demand. Pure: no I/O.

Days of cover = on hand / average daily secondary sales over the demand window.
- negative_stock: book stock below zero (sales recorded without stock: a data-quality signal). Days of cover
  mean nothing there, so they are null, and such a position is neither overstock nor at stock-out risk;
- stockout_risk: stock not negative, recent demand, and cover below the minimum norm;
- overstock: more than `overstock_min_units` on hand, and cover above the maximum norm or no demand at all in the
  window (stock that does not move is the worst overstock). The floor in units keeps a few pieces of a slow SKU,
  whose cover is long only because its demand is small, from being reported as overstock.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Norms:
    min_cover_days: float
    max_cover_days: float
    overstock_min_units: int


@dataclass(frozen=True)
class AlertState:
    kind: str
    active: bool
    on_hand: int
    avg_daily_sales: float
    days_of_cover: float | None
    threshold_days: float | None


ALERT_KINDS = ("negative_stock", "stockout_risk", "overstock")


def evaluate(on_hand: int, units_sold_in_window: int, window_days: int, norms: Norms) -> dict[str, AlertState]:
    avg = max(units_sold_in_window, 0) / window_days
    negative = on_hand < 0
    cover = on_hand / avg if avg > 0 and not negative else None
    conditions = {
        "negative_stock": (negative, None),
        "stockout_risk": (not negative and cover is not None and cover < norms.min_cover_days, norms.min_cover_days),
        "overstock": (
            on_hand > norms.overstock_min_units and (cover is None or cover > norms.max_cover_days),
            norms.max_cover_days,
        ),
    }
    return {
        kind: AlertState(kind, active, on_hand, round(avg, 4), None if cover is None else round(cover, 2), threshold)
        for kind, (active, threshold) in conditions.items()
    }
