"""The figures every sales row and rollup carries, and the SQL that adds them up.

`value`, `units` and `lines` are the net figures every read uses (ordered - cancelled - returned by retailers;
lines: order lines of orders not cancelled). The others say what the net is made of. The statement texts are
built here once, at import, from this one list, so a new figure is added in one place.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple


class Measure(NamedTuple):
    name: str
    sql_type: str


MEASURES: tuple[Measure, ...] = (
    Measure("value", "numeric"),
    Measure("units", "bigint"),
    Measure("lines", "int"),
    Measure("ordered_value", "numeric"),
    Measure("ordered_units", "bigint"),
    Measure("cancelled_value", "numeric"),
    Measure("cancelled_units", "bigint"),
    Measure("returned_value", "numeric"),
    Measure("returned_units", "bigint"),
    Measure("returned_damaged_units", "bigint"),
    Measure("returned_expired_units", "bigint"),
    Measure("returned_unsold_units", "bigint"),
    Measure("delivered_units", "bigint"),
)
NAMES: tuple[str, ...] = tuple(m.name for m in MEASURES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(NAMES)}
RETURN_REASONS: tuple[str, ...] = ("damaged", "expired", "unsold")

Figures = list[Decimal | int]
"""One row's measures, in MEASURES order."""


def zero() -> Figures:
    return [Decimal(0) if m.sql_type == "numeric" else 0 for m in MEASURES]


def add(target: Figures, delta: Sequence[Decimal | int]) -> None:
    for i, amount in enumerate(delta):
        target[i] += amount


def column_list(prefix: str = "") -> str:
    """`value, units, …` (optionally qualified: `t.value, t.units, …`)."""
    return ", ".join(f"{prefix}{name}" for name in NAMES)


def sums(prefix: str = "") -> str:
    """`sum(value) AS value, …`."""
    return ", ".join(f"sum({prefix}{name}) AS {name}" for name in NAMES)


def json_casts(first: int) -> str:
    """The measures read from a json_rows row starting at field `first`: `(r->>4)::numeric AS value, …`."""
    return ", ".join(f"(r->>{first + i})::{m.sql_type} AS {m.name}" for i, m in enumerate(MEASURES))


def accumulate(table: str) -> str:
    """The SET list of an upsert that adds the incoming figures to a row's."""
    return ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in NAMES)


def subtract(target: str, source: str) -> str:
    """The SET list of an update that takes `source`'s figures from `target`'s."""
    return ", ".join(f"{name} = {target}.{name} - {source}.{name}" for name in NAMES)


def all_zero(prefix: str = "") -> str:
    """A row that holds nothing: every measure zero."""
    return " AND ".join(f"{prefix}{name} = 0" for name in NAMES)
