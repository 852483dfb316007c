"""Where in an event's model the values of some types can be, found once per model class, so that walking
every event of a batch for them visits only the fields that may hold them."""

import functools
from datetime import date, datetime
from typing import Any, get_args

from pydantic import AwareDatetime, BaseModel, FutureDate, FutureDatetime, NaiveDatetime, PastDate, PastDatetime

Path = tuple[str | int, ...]

_VALUE_TYPE_OF: dict[Any, type] = {
    AwareDatetime: datetime,
    NaiveDatetime: datetime,
    PastDatetime: datetime,
    FutureDatetime: datetime,
    PastDate: date,
    FutureDate: date,
}
"""pydantic's marker types, which are not subclasses of the values they validate to."""


@functools.cache
def fields_holding(model: type[BaseModel], kinds: tuple[type, ...]) -> tuple[str, ...]:
    """Names of `model`'s fields whose values are, or contain, instances of `kinds`."""
    return tuple(name for name, info in model.model_fields.items() if _may_hold(info.annotation, kinds))


def _may_hold(annotation: Any, kinds: tuple[type, ...]) -> bool:
    annotation = _VALUE_TYPE_OF.get(annotation, annotation)
    if isinstance(annotation, type):
        if issubclass(annotation, kinds):
            return True
        if issubclass(annotation, BaseModel):
            return bool(fields_holding(annotation, kinds))
    # Unions, Optional, list[...], Annotated[...]: any of the arguments (metadata arguments hold nothing).
    return any(_may_hold(argument, kinds) for argument in get_args(annotation))


def values_of(value: Any, kinds: tuple[type, ...], path: Path = ()) -> list[tuple[Path, Any]]:
    """Every value of one of `kinds` inside `value` (a model, a list of them, or a value), with its path."""
    found: list[tuple[Path, Any]] = []
    _collect(value, kinds, path, found)
    return found


def _collect(value: Any, kinds: tuple[type, ...], path: Path, found: list[tuple[Path, Any]]) -> None:
    # A plain recursive function rather than nested generators: this runs for every event of every batch.
    if isinstance(value, kinds):
        found.append((path, value))
    elif isinstance(value, BaseModel):
        for name in fields_holding(type(value), kinds):
            _collect(getattr(value, name), kinds, (*path, name), found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _collect(item, kinds, (*path, index), found)


def dotted(path: Path) -> str:
    """A path as field errors name it: payload.lines.0.unit_price."""
    return ".".join(str(part) for part in path)
