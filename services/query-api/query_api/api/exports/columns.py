"""The columns of an exported table, from the response model: their order and the kind of value each holds."""

import types
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel

_LEADING = ("rank", "id", "name")
"""Identify the row before its figures."""


def column_names(model: type[BaseModel]) -> list[str]:
    leading = [c for c in _LEADING if c in model.model_fields]
    return leading + [c for c in model.model_fields if c not in leading]


def value_type(annotation: Any) -> type:
    """The one type a column holds, without its None: Decimal, int, float, bool, date, datetime or str (ids,
    UUIDs, enums, literals and anything else are written as text)."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return value_type(options[0]) if len(options) == 1 else str
    if get_origin(annotation) is Literal:
        return str
    # bool before int (a bool is an int), datetime before date (a datetime is a date).
    for kind in (bool, Decimal, int, float, datetime, date):
        if isinstance(annotation, type) and issubclass(annotation, kind):
            return kind
    return str


def column_types(model: type[BaseModel]) -> dict[str, type]:
    return {name: value_type(model.model_fields[name].annotation) for name in column_names(model)}


def plain(value: object) -> object:
    """A cell value without pydantic's or Python's wrappers: enums as their value, UUIDs as text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    return value
