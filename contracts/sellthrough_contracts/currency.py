"""The brand's currency: the one every money field of its books is in (single-currency books).

Read from the environment variable SELLTHROUGH_CURRENCY (default INR), the same variable the services' settings
read as `currency`. The contracts need it to upcast records written before money carried its currency: those were
in the brand's currency, whatever it is, so the upcaster cannot pin one.
"""

import functools
import os
import re

from sellthrough_contracts.versions import Document, with_payload

CURRENCY_VARIABLE = "SELLTHROUGH_CURRENCY"
DEFAULT_CURRENCY = "INR"
_ISO_4217 = re.compile(r"[A-Z]{3}\Z")


@functools.cache  # one brand per process: read once
def brand_currency() -> str:
    """The ISO 4217 code of the brand's books; a malformed setting stops the process rather than mislabel money."""
    code = os.environ.get(CURRENCY_VARIABLE, DEFAULT_CURRENCY)
    if not _ISO_4217.match(code):
        raise ValueError(f"{CURRENCY_VARIABLE}={code!r} is not an ISO 4217 code (three capital letters)")
    return code


def in_brand_currency(data: Document) -> Document:
    """An upcaster for a version that adds `currency` beside money: the record was in the brand's currency (one kept
    if a record already names one)."""
    return with_payload(data, lambda payload: {**payload, "currency": payload.get("currency", brand_currency())})
