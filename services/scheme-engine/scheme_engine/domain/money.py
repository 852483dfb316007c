"""Money arithmetic for benefits: Decimal only, never float.

Rounding rule: every amount handed to a retailer (one line's discount, the cost of one batch of free goods)
is rounded to 2 decimal places with ROUND_HALF_UP, the convention printed on invoices. A benefit's total is
the sum of its rounded parts, so its detail always adds up to it. Thresholds (slabs, minimum values) compare
exact, unrounded values. Budget headroom is the one amount rounded down to whole cents: rounding it up
could grant a fraction of a cent past a cap.
"""

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def floor_cents(value: Decimal) -> Decimal:
    """Whole cents not above a non-negative value."""
    return value.quantize(CENT, rounding=ROUND_DOWN)


def split_pro_rata(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split a whole-cent amount over weights in whole cents that add up to it exactly.

    Largest remainder: each part gets its floor, and the cents left over go to the parts with the largest
    fractions (the earlier part on a tie), so the split depends only on the inputs. Zero weights everywhere
    split evenly."""
    if not weights:
        return []
    if sum(weights) == 0:
        weights = [Decimal(1)] * len(weights)
    total = sum(weights)
    cents = int(amount / CENT)
    exact = [Decimal(cents) * weight / total for weight in weights]
    parts = [int(share) for share in exact]
    leftover = cents - sum(parts)
    by_fraction = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for index in by_fraction[:leftover]:
        parts[index] += 1
    return [Decimal(part) * CENT for part in parts]
