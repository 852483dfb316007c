"""CSV export of any read endpoint's table: `format=csv` answers the rows as text/csv with a header row."""

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import Query, Response
from pydantic import BaseModel

Format = Annotated[
    Literal["json", "csv"], Query(alias="format", description="`csv` answers the rows as text/csv with a header.")
]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON, or CSV with format=csv."}
}


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, tab or CR first: a shop named
    "=HYPERLINK(...)") gets a leading apostrophe, so it is shown as text. Numbers are left as they are: a negative
    figure stays a number."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(model: type[BaseModel], rows: Sequence[BaseModel]) -> str:
    """A header row of the model's fields, then one line per row; nulls are empty cells, text that could run as a
    formula is neutralised (safe_cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; a CR or LF inside a cell is then quoted
    leading = [c for c in ("rank", "id", "name") if c in model.model_fields]  # identify the row before its figures
    columns = leading + [c for c in model.model_fields if c not in leading]
    writer.writerow(columns)
    for row in rows:
        data = row.model_dump()
        writer.writerow(["" if data[c] is None else safe_cell(data[c]) for c in columns])
    return out.getvalue()


def csv_response(model: type[BaseModel], rows: Sequence[BaseModel], name: str) -> Response:
    return Response(
        to_csv(model, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
