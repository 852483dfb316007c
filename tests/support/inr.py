"""Indian number formats as the dashboard shows them (Intl en-IN): what a browser test expects on the page."""

from decimal import ROUND_HALF_UP, Decimal


def indian_grouping(digits: str) -> str:
    """Thousands, then lakhs and crores: the last three digits, then pairs (12345678 -> 1,23,45,678)."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        head, pair = head[:-2], head[-2:]
        pairs.insert(0, pair)
    return ",".join([head, *pairs, tail])


def inr(value: str | Decimal | float) -> str:
    """Every digit, two decimals: 12345678.5 -> ₹1,23,45,678.50."""
    amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    whole, fraction = f"{abs(amount):.2f}".split(".")
    return f"{sign}₹{indian_grouping(whole)}.{fraction}"


def indian_count(value: int) -> str:
    sign = "-" if value < 0 else ""
    return sign + indian_grouping(str(abs(value)))
