"""CSV (RFC 4180, UTF-8): a header row, then one line per row; nulls are empty cells and text a spreadsheet would
run as a formula is neutralised (safe_cell)."""

import csv
import io
from collections.abc import Iterator, Sequence

from pydantic import BaseModel

from query_api.api.exports.columns import column_names, plain

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab or CR first: a shop named
    "=HYPERLINK(...)") gets a leading apostrophe, so it is shown as text. Numbers are left as they are: a negative
    figure stays a number."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class CsvEncoder:
    media_type = "text/csv; charset=utf-8"
    suffix = "csv"

    def __init__(self, model: type[BaseModel]) -> None:
        self._columns = column_names(model)

    def _lines(self, rows: Iterator[list[object]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)  # a CR or LF inside a cell is then quoted
        return out.getvalue().encode()

    def start(self) -> bytes:
        return self._lines(iter([list(self._columns)]))

    def rows(self, batch: Sequence[BaseModel]) -> bytes:
        dumped = (row.model_dump() for row in batch)
        return self._lines(
            ["" if data[c] is None else safe_cell(plain(data[c])) for c in self._columns] for data in dumped
        )

    def end(self) -> Iterator[bytes]:
        return iter(())


def to_csv(model: type[BaseModel], rows: Sequence[BaseModel]) -> str:
    """The whole table as text, for small tables and tests."""
    encoder = CsvEncoder(model)
    return (encoder.start() + encoder.rows(rows)).decode()
