"""What a read says about its money and its packs: the currency of its amounts, SKU quantities in cases + units.

The books are single-currency (order-capture refuses a write in another): every amount a response carries is in
the brand's currency, SELLTHROUGH_CURRENCY (sellthrough_contracts.currency), and the response says which. CSV
exports keep plain decimals: they write the rows, not the response.
"""

from pydantic import BaseModel, Field

from sellthrough_contracts.common import Currency
from sellthrough_contracts.currency import brand_currency


class Priced(BaseModel):
    """A response carrying money: its amounts are in `currency`."""

    currency: Currency = Field(
        default_factory=brand_currency, description="ISO 4217 code of every amount in this response: the brand's."
    )


def in_cases(quantity: int | None, units_per_case: int | None) -> tuple[int, int] | tuple[None, None]:
    """`quantity` as (whole cases, loose units) of the SKU's case size, so that cases x units_per_case + units =
    quantity; (None, None) when the SKU has no case size. A negative quantity (negative book stock) splits as its
    opposite, negated: -14 in cases of 12 is (-1, -2). Flat fields rather than an object: CSV rows stay flat."""
    if quantity is None or not units_per_case:
        return None, None
    cases, units = divmod(abs(quantity), units_per_case)
    sign = -1 if quantity < 0 else 1
    return sign * cases, sign * units


UNITS_PER_CASE_DOC = "Selling units in one case of the SKU; null when not known (quantities are then not split)."
CASES_DOC = "{0} as whole cases (with {1}_loose_units: cases x units_per_case + loose units); null without a case size."
LOOSE_DOC = "{0} left over after whole cases; null without a case size."
