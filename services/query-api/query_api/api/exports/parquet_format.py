"""Parquet (pyarrow): typed columns, one row group per batch written out as soon as it is encoded.

Money is decimal128(38, 4), the scale every amount is stored with (numeric(18, 4)); dates are date32, instants
timestamp[us, UTC], counts int64, rates float64 and everything else UTF-8 text. Text is written as it is: the
formula guard of CSV and Excel is for spreadsheets, not for readers of typed columns.
"""

import io
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from query_api.api.exports.columns import column_types, plain

MONEY_SCALE = 4
_ARROW: dict[type, pa.DataType] = {
    Decimal: pa.decimal128(38, MONEY_SCALE),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    date: pa.date32(),
    datetime: pa.timestamp("us", tz="UTC"),
    str: pa.string(),
}
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    return pa.schema([pa.field(name, _ARROW[kind]) for name, kind in column_types(model).items()])


class _Drain(io.RawIOBase):
    """A write-only sink the encoder empties after each row group, so the file never sits whole in memory."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._buffer += data
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class ParquetEncoder:
    media_type = "application/vnd.apache.parquet"
    suffix = "parquet"

    def __init__(self, model: type[BaseModel]) -> None:
        self._types = column_types(model)
        self._schema = arrow_schema(model)
        self._sink = _Drain()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")

    def _cell(self, value: object, kind: type) -> object:
        value = plain(value)
        if kind is str and value is not None and not isinstance(value, str):
            return str(value)
        if isinstance(value, Decimal) and value.as_tuple().exponent < -MONEY_SCALE:  # type: ignore[operator]
            return value.quantize(_QUANTUM)  # a computed amount finer than storage: rounded half-even
        return value

    def start(self) -> bytes:
        return self._sink.take()

    def rows(self, batch: Sequence[BaseModel]) -> bytes:
        if not batch:
            return b""
        columns: dict[str, list[object]] = {name: [] for name in self._types}
        for row in batch:
            for name, kind in self._types.items():
                columns[name].append(self._cell(getattr(row, name), kind))
        self._writer.write_table(pa.Table.from_pydict(columns, schema=self._schema))
        return self._sink.take()

    def end(self) -> Iterator[bytes]:
        self._writer.close()  # the footer: the schema and where each row group is
        yield self._sink.take()
