"""Schema versions of event types, and upcasting older versions to the current shape.

The rule (see also compat.py): a released JSON Schema (`schemas/released/<Type>.v<N>.json`) is what readers of
version N rely on, and it is never edited. Its objects are closed (`additionalProperties: false`), so any change
to what a writer may put in an event, even one optional field, is a new `schema_version` of that event type,
released as a new file. Each event class declares its current version as the default of `schema_version`, and
writers always emit it. An event class past version 1 derives from `Upcast` and names one upcaster per older
version: a function from an event document of version N to one of version N + 1 (the idea of pyeventsourcing's
upcasting). Reading an older record (`decode_event`, or `parse_event` at the HTTP edge) runs the chain, so code
only ever sees the current shape. A version newer than the reader knows is refused with the error type
`unknown_schema_version`: deploy readers of a new version before its writers.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

Document = dict[str, Any]
"""An event as a JSON document (envelope and payload), before validation."""

Upcaster = Callable[[Document], Document]
"""Turns an event document of version N into one of version N + 1 (schema_version is set by the caller)."""

UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
"""The pydantic error type of a schema_version newer than this code knows."""

VERSION_DESCRIPTION = "Version of this event type's payload schema."


@functools.cache  # every event read asks, and pydantic's model_fields is slow to reach
def current_version(event_class: type[BaseModel]) -> int:
    """The schema_version this code writes for an event class (the default of its `schema_version`)."""
    return int(event_class.model_fields["schema_version"].default)


def refuse_unknown(event_class: type[BaseModel], version: Any) -> Any:
    """`version` unchanged if this code knows it; an `unknown_schema_version` error if it is newer."""
    if isinstance(version, int) and not isinstance(version, bool):
        newest = current_version(event_class)
        if version > newest:
            raise PydanticCustomError(
                UNKNOWN_SCHEMA_VERSION,
                "schema_version {version} is not known here; the newest known is {newest}",
                {"version": version, "newest": newest},
            )
    return version


def upcast(event_class: type[BaseModel], upcasters: Mapping[int, Upcaster], data: Any) -> Any:
    """An event document of an older version brought to the current one; anything else unchanged (validation
    reports what is wrong with it). A document without schema_version is taken as current: every record ever
    written carries one, so only a client's request can omit it."""
    if not isinstance(data, dict):
        return data
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return data
    newest = current_version(event_class)
    while version < newest:
        data = {**upcasters[version](data), "schema_version": version + 1}
        version += 1
    return data


def with_payload(data: Document, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Document:
    """`data` with `change` applied to a copy of its payload; a payload that is not an object is left for
    validation to report."""
    payload = data.get("payload")
    if not isinstance(payload, dict):
        return data
    return {**data, "payload": change(dict(payload))}
