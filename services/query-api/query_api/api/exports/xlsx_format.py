"""Excel (openpyxl in write-only mode): one sheet, a header row, numbers as numbers and dates as dates.

Write-only mode streams the sheet's rows to a temporary file as they are appended, and the finished workbook is
saved to a spooled temporary file (on disk past a few MB), then sent in chunks: a large export is never whole in
memory. Text a spreadsheet would run as a formula is neutralised as in CSV (safe_cell); characters XML cannot
hold (control characters) are dropped.
"""

import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from pydantic import BaseModel

from query_api.api.exports.columns import column_names, plain
from query_api.api.exports.csv_format import safe_cell

CHUNK = 64 * 1024
_SPOOL = 4 * 1024 * 1024


def _cell(value: object) -> object:
    value = plain(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)  # Excel has no time zones: instants in UTC
    if isinstance(value, str):
        return safe_cell(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


class XlsxEncoder:
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    suffix = "xlsx"

    def __init__(self, model: type[BaseModel], title: str = "export") -> None:
        self._columns = column_names(model)
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title[:31])  # Excel's limit on a sheet name

    def start(self) -> bytes:
        self._sheet.append(self._columns)
        return b""

    def rows(self, batch: Sequence[BaseModel]) -> bytes:
        for row in batch:
            self._sheet.append([_cell(getattr(row, c)) for c in self._columns])
        return b""  # nothing to send until the workbook is closed: a zip's directory comes last

    def end(self) -> Iterator[bytes]:
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as out:
            self._book.save(out)
            out.seek(0)
            while chunk := out.read(CHUNK):
                yield chunk
