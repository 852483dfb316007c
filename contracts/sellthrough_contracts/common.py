"""Value types shared by several payloads."""

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A business identifier from the brand's masters: 1-64 characters, no spaces (safe in URLs and keys)."""

NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NAME_PATTERN)]
"""Free text such as a shop name: no control characters (a NUL byte, for one, cannot be stored)."""

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
"""A non-negative amount in the brand's currency."""

SignedMoney = Annotated[Decimal, Field(max_digits=18, decimal_places=4)]
"""An amount in the brand's currency that may be negative, such as the value of negative book stock or of a
shortage. On the wire a decimal string, like every amount: never a float."""

Currency = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{3}$", min_length=3, max_length=3, description="ISO 4217 code of every money field beside it."
    ),
]
"""The currency of the money fields beside it. The books are single-currency: order-capture refuses a write in
another currency than the brand's (SELLTHROUGH_CURRENCY, currency.py)."""

Quantity = Annotated[int, Field(gt=0, le=1_000_000)]
"""Selling units (pieces), strictly positive: a zero or negative line is a data-entry error."""

class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_serialization_defaults_required=True)


class GeoPoint(Payload):
    """A WGS84 position as reported by the device, with its accuracy radius."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, description="Accuracy radius in metres.")
