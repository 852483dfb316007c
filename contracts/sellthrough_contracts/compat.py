"""Backward-compatibility rules between a released JSON Schema and the current model of the same schema version.

A reader built against the released schema must still understand what current writers produce:
- every field it knew is still there (no removals);
- a field that was required is still required (it may rely on it being present);
- a field's type never widens or changes (new type set within the old one: no int -> str, no
  "now nullable");
- an enum never gains values the reader does not know;
- a closed object (`additionalProperties: false`, as every event's is) gains no field: a reader that validates
  against the released schema would refuse it.
Adding an optional field to an open object is fine. Nested objects and array items are checked recursively.
A change these rules refuse is a new schema_version with an upcaster (versions.py), never an edit of a released
schema.
"""

from typing import Any

Schema = dict[str, Any]


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref}")
        node = root["$defs"][ref.removeprefix("#/$defs/")]
    return node


def _variants(node: Schema, root: Schema) -> list[Schema]:
    node = _resolve(node, root)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        return [v for option in options for v in _variants(option, root)]
    return [node]


def _type_names(node: Schema, root: Schema) -> set[str]:
    names = set()
    for variant in _variants(node, root):
        kind = variant.get("type")
        if "const" in variant:
            kind = f"const:{variant['const']}"
        elif kind is None:
            kind = "any"
        elif "format" in variant:
            kind = f"{kind}:{variant['format']}"
        names.add(str(kind))
    return names


def _single_variant(node: Schema, root: Schema, kind: str) -> Schema | None:
    for variant in _variants(node, root):
        if variant.get("type") == kind:
            return variant
    return None


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    """Reasons why a reader of `released` would break on data written with `current`; empty if none."""
    problems: list[str] = []
    _compare(released, released, current, current, "", problems)
    return problems


def _compare(old: Schema, old_root: Schema, new: Schema, new_root: Schema, path: str, out: list[str]) -> None:
    old_types, new_types = _type_names(old, old_root), _type_names(new, new_root)
    if "any" not in old_types and not new_types <= old_types:
        out.append(f"{path or '<root>'}: type changed from {sorted(old_types)} to {sorted(new_types)}")
        return

    old_enum = _resolve(old, old_root).get("enum")
    new_enum = _resolve(new, new_root).get("enum")
    if old_enum is not None and (new_enum is None or not set(new_enum) <= set(old_enum)):
        out.append(f"{path}: enum values added or removed: {old_enum} -> {new_enum}")

    old_obj, new_obj = _single_variant(old, old_root, "object"), _single_variant(new, new_root, "object")
    if old_obj is not None and new_obj is not None:
        new_props = new_obj.get("properties", {})
        new_required = set(new_obj.get("required", []))
        for name, old_prop in old_obj.get("properties", {}).items():
            field_path = f"{path}.{name}" if path else name
            if name not in new_props:
                out.append(f"{field_path}: removed")
                continue
            if name in old_obj.get("required", []) and name not in new_required:
                out.append(f"{field_path}: no longer required")
            _compare(old_prop, old_root, new_props[name], new_root, field_path, out)
        if old_obj.get("additionalProperties") is False:
            old_props = old_obj.get("properties", {})
            for name in new_props:
                if name not in old_props:
                    out.append(f"{f'{path}.{name}' if path else name}: added to a closed object")

    old_arr, new_arr = _single_variant(old, old_root, "array"), _single_variant(new, new_root, "array")
    if old_arr is not None and new_arr is not None and "items" in old_arr and "items" in new_arr:
        _compare(old_arr["items"], old_root, new_arr["items"], new_root, f"{path}[]", out)
