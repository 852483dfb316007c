"""Control characters in posted strings. A NUL cannot be stored in a Postgres text or jsonb value, and the
others (newlines, escapes) have no place in an id, a name or a device id; the contract's patterns cover the
ids and names, this covers every string, the envelope's `source` and `actor` included."""

import re
from typing import Any

from order_capture.domain.fields import Path, dotted

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAY_HOLD_CONTROL = re.compile(rb"\\[bfnrtu]|\x7f")
"""How a control character looks in orjson's output: escaped (`\\n`, `\\u0000`; orjson writes no other `\\u`
escapes) or, for DEL, as itself. An escaped backslash can match too: then the walk below finds nothing."""


def control_character_errors(raw: Any, encoded: bytes) -> list[dict[str, str]]:
    """Field errors for strings in `raw` holding control characters; `encoded` is `raw` as orjson wrote it,
    scanned first so that clean events (nearly all) are not walked."""
    if b"\\" not in encoded and b"\x7f" not in encoded:
        return []  # the common case, found without the regular expression
    if not _MAY_HOLD_CONTROL.search(encoded):
        return []
    errors: list[dict[str, str]] = []
    _walk(raw, (), errors)
    return errors


def _walk(value: Any, path: Path, errors: list[dict[str, str]]) -> None:
    if isinstance(value, str):
        if match := _CONTROL.search(value):
            errors.append(
                {
                    "field": dotted(path),
                    "message": f"control character U+{ord(match.group()):04X} at position {match.start()}; "
                    "strings may not hold characters U+0000-U+001F or U+007F",
                }
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, (*path, key), errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, index), errors)
