import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from sellthrough_contracts import EVENT_TYPES
from sellthrough_contracts.compat import breaking_changes
from sellthrough_contracts.schemas import (
    SCHEMAS_DIR,
    current_schemas,
    drifted_files,
    edited_releases,
    schema_version_of,
    write,
)


def test_checked_in_schemas_match_the_models() -> None:
    assert drifted_files() == [], "run `make schemas` and commit contracts/schemas"


def test_drift_is_detected(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "current" / "OrderCaptured.json").write_text("{}\n")
    assert drifted_files(tmp_path) == ["current/OrderCaptured.json"]


def test_released_schemas_are_as_they_were_released() -> None:
    assert edited_releases() == [], "a released schema is never edited: change the model under a new schema_version"


def test_an_edited_or_unrecorded_released_schema_is_detected(tmp_path: Path) -> None:
    write(tmp_path)
    assert edited_releases(tmp_path) == []
    edited = tmp_path / "released" / "OrderDelivered.v1.json"
    edited.write_text(edited.read_text().replace('"additionalProperties": false', '"additionalProperties": true'))
    (tmp_path / "released" / "OrderDelivered.v2.json").write_text("{}\n")  # not written by schemas.write
    assert edited_releases(tmp_path) == ["released/OrderDelivered.v1.json", "released/OrderDelivered.v2.json"]


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_current_models_can_still_be_read_by_readers_of_every_released_version(event_type: str) -> None:
    version = schema_version_of(event_type)
    released_path = SCHEMAS_DIR / "released" / f"{event_type}.v{version}.json"
    assert released_path.exists(), f"no released schema for {event_type} v{version}: run `make schemas`"
    released = json.loads(released_path.read_text())
    assert breaking_changes(released, current_schemas()[event_type]) == []


class Line(BaseModel):
    sku_id: str
    quantity: int


class Released(BaseModel):
    order_id: str
    note: str | None = None
    lines: list[Line]
    channel: str = Field(json_schema_extra={"enum": ["grocery", "chemist"]})


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


def test_adding_an_optional_field_is_compatible() -> None:
    class AddsField(Released):
        extra: str | None = None

    assert breaking_changes(schema(Released), schema(AddsField)) == []


def test_removing_a_field_breaks_older_readers() -> None:
    class RemovesNote(BaseModel):
        order_id: str
        lines: list[Line]
        channel: str = Field(json_schema_extra={"enum": ["grocery", "chemist"]})

    assert breaking_changes(schema(Released), schema(RemovesNote)) == ["note: removed"]


def test_retyping_a_field_breaks_older_readers() -> None:
    class RetypesOrderId(Released):
        order_id: int  # type: ignore[assignment]

    problems = breaking_changes(schema(Released), schema(RetypesOrderId))
    assert problems == ["order_id: type changed from ['string'] to ['integer']"]


def test_making_a_field_nullable_breaks_older_readers() -> None:
    class NullableOrderId(Released):
        order_id: str | None  # type: ignore[assignment]

    assert breaking_changes(schema(Released), schema(NullableOrderId))[0].startswith("order_id: type changed")


def test_retyping_a_nested_field_breaks_older_readers() -> None:
    class DecimalLine(BaseModel):
        sku_id: str
        quantity: float

    class NestedChange(Released):
        lines: list[DecimalLine]  # type: ignore[assignment]

    assert breaking_changes(schema(Released), schema(NestedChange)) == [
        "lines[].quantity: type changed from ['integer'] to ['number']"
    ]


def test_adding_an_enum_value_breaks_older_readers() -> None:
    class MoreChannels(Released):
        channel: str = Field(json_schema_extra={"enum": ["grocery", "chemist", "pharmacy"]})

    assert breaking_changes(schema(Released), schema(MoreChannels))[0].startswith("channel: enum values")


def test_adding_a_field_to_a_closed_object_breaks_readers_that_validate() -> None:
    class Closed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        order_id: str

    class ClosedPlusField(Closed):
        note: str | None = None

    assert breaking_changes(schema(Closed), schema(ClosedPlusField)) == ["note: added to a closed object"]


def test_the_norms_added_to_sku_payloads_without_a_version_would_have_been_caught() -> None:
    # What happened before schema versions were enforced: fields added to SkuRegistered under version 1.
    released_v1 = json.loads((SCHEMAS_DIR / "released" / "SkuRegistered.v1.json").read_text())
    problems = breaking_changes(released_v1, current_schemas()["SkuRegistered"])
    assert "payload.max_cover_days: added to a closed object" in problems
