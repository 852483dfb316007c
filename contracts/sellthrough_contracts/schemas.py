"""Generate the JSON Schemas of every event type into contracts/schemas.

`current/<EventType>.json` always mirrors the models (a test fails if it drifts).
`released/<EventType>.v<N>.json` is written once, when version N first appears, and never rewritten:
it is what readers of version N were built against, and `compat.breaking_changes` checks the
current model still satisfies them. `released/SHA256SUMS` (sha256sum's format) records each released file as it
was written; `--check` fails if one was edited since, or was added without going through this module.

Run: python -m sellthrough_contracts.schemas [--check]
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from sellthrough_contracts.registry import EVENT_TYPES

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"


def current_schemas() -> dict[str, dict[str, Any]]:
    return {name: cls.model_json_schema(mode="serialization") for name, cls in sorted(EVENT_TYPES.items())}


def schema_version_of(event_type: str) -> int:
    default = EVENT_TYPES[event_type].model_fields["schema_version"].default
    return int(default)


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def drifted_files(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Checked-in files under current/ that differ from (or are missing for) the models."""
    drifted = []
    for name, schema in current_schemas().items():
        path = schemas_dir / "current" / f"{name}.json"
        if not path.exists() or path.read_text() != render(schema):
            drifted.append(str(path.relative_to(schemas_dir)))
    return drifted


SUMS = "SHA256SUMS"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorded_sums(schemas_dir: Path) -> dict[str, str]:
    sums = schemas_dir / "released" / SUMS
    if not sums.exists():
        return {}
    return {name: digest for digest, name in (line.split("  ", 1) for line in sums.read_text().splitlines() if line)}


def edited_releases(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Released schemas that differ from their recorded checksum, or have none, or are missing."""
    recorded = _recorded_sums(schemas_dir)
    on_disk = {path.name: _digest(path) for path in (schemas_dir / "released").glob("*.json")}
    return sorted(
        f"released/{name}" for name in recorded.keys() | on_disk.keys() if recorded.get(name) != on_disk.get(name)
    )


def write(schemas_dir: Path = SCHEMAS_DIR) -> list[Path]:
    written = []
    (schemas_dir / "current").mkdir(parents=True, exist_ok=True)
    (schemas_dir / "released").mkdir(parents=True, exist_ok=True)
    for name, schema in current_schemas().items():
        current = schemas_dir / "current" / f"{name}.json"
        current.write_text(render(schema))
        written.append(current)
        released = schemas_dir / "released" / f"{name}.v{schema_version_of(name)}.json"
        if not released.exists():
            released.write_text(render(schema))
            written.append(released)
    recorded = _recorded_sums(schemas_dir)
    for path in written:
        if path.parent.name == "released":
            recorded[path.name] = _digest(path)
    sums = schemas_dir / "released" / SUMS
    sums.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(recorded.items())))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if checked-in schemas differ")
    args = parser.parse_args()
    if args.check:
        drifted, edited = drifted_files(), edited_releases()
        for name in drifted:
            print(f"out of date: contracts/schemas/{name} (run `make schemas`)", file=sys.stderr)
        for name in edited:
            print(
                f"edited, or not recorded in released/{SUMS}: contracts/schemas/{name} (a released schema is never "
                "changed: a change is a new schema_version, see versions.py)",
                file=sys.stderr,
            )
        return 1 if drifted or edited else 0
    for written in write():
        print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
