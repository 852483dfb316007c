"""The export encoders (query_api.api.exports): each file format read back with its own reader equals the rows,
and a streamed export is sent a batch at a time, before the next batch is read."""

import asyncio
import csv
import io
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID, uuid4

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from query_api.api.exports import encoded, encoder, export_response
from query_api.api.exports.parquet_format import arrow_schema


class Row(BaseModel):
    day: date
    name: str | None
    id: str
    value: Decimal
    units: int
    share_pct: float | None
    at: datetime
    event_id: UUID
    kind: Literal["a", "b"]


ROWS = [
    Row(
        day=date(2026, 10, 2),
        name='=HYPERLINK("http://x")',
        id="O1",
        value=Decimal("134.5000"),
        units=14,
        share_pct=51.64,
        at=datetime(2026, 10, 2, 10, 0, tzinfo=UTC),
        event_id=uuid4(),
        kind="a",
    ),
    Row(
        day=date(2026, 10, 3),
        name=None,
        id="O2",
        value=Decimal("-20"),
        units=-5,
        share_pct=None,
        at=datetime(2026, 10, 3, 11, 30, tzinfo=UTC),
        event_id=uuid4(),
        kind="b",
    ),
]


async def body_of(fmt: str) -> tuple[StreamingResponse, bytes]:
    """A Parquet or Excel export, encoded off the event loop while sent."""
    response = export_response(Row, ROWS, "rows", fmt)
    assert isinstance(response, StreamingResponse)
    return response, b"".join([bytes(piece) async for piece in response.body_iterator])  # type: ignore[arg-type]


async def test_parquet_has_typed_columns_and_reads_back_equal() -> None:
    schema = arrow_schema(Row)
    assert schema.field("value").type == pa.decimal128(38, 4)
    assert schema.field("day").type == pa.date32()
    assert schema.field("units").type == pa.int64()
    assert schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert schema.names[:2] == ["id", "name"]  # the row's identity first, as in CSV
    response, body = await body_of("parquet")
    assert response.headers["content-disposition"] == 'attachment; filename="rows.parquet"'
    table = pq.read_table(io.BytesIO(body)).to_pylist()
    for got, row in zip(table, ROWS, strict=True):
        assert got["value"] == row.value
        assert got["day"] == row.day
        assert got["units"] == row.units
        assert got["name"] == row.name  # typed text, not neutralised: Parquet is not run by a spreadsheet
        assert got["at"] == row.at
        assert got["event_id"] == str(row.event_id)
        assert got["kind"] == row.kind
        assert got["share_pct"] == row.share_pct


async def test_xlsx_has_numbers_as_numbers_and_formulas_neutralised() -> None:
    response, body = await body_of("xlsx")
    assert response.media_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = openpyxl.load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    header, *cells = list(sheet.iter_rows(values_only=True))
    assert header[:3] == ("id", "name", "day")
    first = dict(zip(header, cells[0], strict=True))
    assert first["name"] == '\'=HYPERLINK("http://x")'  # shown as text, as the CSV has it
    assert first["value"] == 134.5
    assert isinstance(first["value"], float)
    assert first["units"] == 14
    assert first["day"].date() == date(2026, 10, 2)
    second = dict(zip(header, cells[1], strict=True))
    assert (second["name"], second["share_pct"], second["units"]) == (None, None, -5)


def test_csv_is_unchanged_by_the_move() -> None:
    text = bytes(export_response(Row, ROWS, "rows", "csv").body).decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["value"] for r in table] == ["134.5000", "-20"]
    assert table[0]["name"].startswith("'=")
    assert table[1]["name"] == ""


async def _stream(fmt: str, batches: int, size: int, log: list[str]) -> list[bytes]:
    async def source() -> AsyncIterator[list[Row]]:
        for i in range(batches):
            log.append(f"read {i}")
            yield [ROWS[0].model_copy(update={"units": i * size + j}) for j in range(size)]
            await asyncio.sleep(0)

    pieces = []
    async for piece in encoded(encoder(Row, fmt, "rows"), source()):
        log.append("sent")
        pieces.append(piece)
    return pieces


async def test_parquet_and_csv_are_sent_a_batch_at_a_time() -> None:
    for fmt in ("csv", "parquet"):
        log: list[str] = []
        pieces = await _stream(fmt, batches=5, size=1000, log=log)
        # Each batch is encoded and sent before the next one is read from the cursor: never the whole table held.
        reads = [i for i, entry in enumerate(log) if entry.startswith("read")]
        assert all("sent" in log[a:b] for a, b in itertools.pairwise(reads)), (fmt, log)
        assert len(pieces) >= 5
    file = pq.ParquetFile(io.BytesIO(b"".join(await _stream("parquet", batches=5, size=1000, log=[]))))
    assert file.metadata.num_row_groups == 5
    assert file.read().column("units").to_pylist() == list(range(5000))


async def test_xlsx_of_many_rows_reads_back_whole() -> None:
    pieces = await _stream("xlsx", batches=4, size=2500, log=[])
    assert len(pieces) > 1  # the saved workbook is sent in chunks
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(pieces)), read_only=True).active
    assert sheet is not None
    units = [row[4] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert units == list(range(10_000))
