"""Which of query-api's tables hold line-level facts, and an order's lines as rows of them: what the rebuild's COPY
baselines load. Read from query-api's own migrations applied to a scratch schema, never from a copy of its DDL, so
the baselines follow the projection when its tables change (a table of order lines is any table with both an
order id (order_id, or document_id) and a sku_id column: sales_order_skus, or the append-only order-line fact
table sales_lines, whose rows of an order's lines are of kind 'order')."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from query_api.main import MIGRATIONS as QUERY_API_MIGRATIONS
from sellthrough_runtime.db import migrate

# Tables (plain or partitioned, not partitions) with their columns; views are not loaded into.
_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name, NOT a.attnotnull AS nullable, a.atthasdef AS has_default
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""
_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2"

Line = Mapping[str, Any]
"""One order line with every fact a table could ask for, by the names projections give them."""

# Column name -> the line fact (key of a Line) it holds. A column not here is left to its default (or null); a NOT
# NULL column without a default that is not here stops the bench with its name, so this map is extended, not guessed.
FACTS: dict[str, str] = {
    "event_id": "event_id",
    "order_id": "order_id",
    "document_id": "order_id",
    "kind": "kind",
    "distributor_id": "distributor_id",
    "outlet_id": "outlet_id",
    "rep_id": "rep_id",
    "sku_id": "sku_id",
    "brand": "brand",
    "day": "day",
    "occurred_at": "occurred_at",
    "recorded_at": "recorded_at",
    "source": "source",
    "actor": "actor",
    "line_no": "line_no",
    "quantity": "quantity",
    "units": "quantity",
    "ordered_units": "quantity",
    "unit_price": "unit_price",
    "value": "value",
    "ordered_value": "value",
    "lines": "lines",
}


@dataclass(frozen=True)
class LineTable:
    name: str
    columns: tuple[str, ...]
    """The columns a COPY fills, in order."""

    def row(self, line: Line) -> tuple[Any, ...]:
        return tuple(line[FACTS[c]] for c in self.columns)


def order_lines(order: dict[str, Any], recorded_at: datetime, brands: Mapping[str, str]) -> list[Line]:
    """The order's lines with every fact (day in UTC, the bench's business time zone)."""
    occurred_at = datetime.fromisoformat(order["occurred_at"])
    payload = order["payload"]
    return [
        {
            "event_id": UUID(order["event_id"]),
            "order_id": payload["order_id"],
            "distributor_id": payload["distributor_id"],
            "outlet_id": payload["outlet_id"],
            "rep_id": payload["rep_id"],
            "sku_id": line["sku_id"],
            "brand": brands.get(line["sku_id"]),
            "day": occurred_at.astimezone(UTC).date(),
            "occurred_at": occurred_at,
            "recorded_at": recorded_at,
            "source": order["source"],
            "actor": order["actor"],
            "line_no": number,
            "quantity": line["quantity"],
            "unit_price": Decimal(line["unit_price"]),
            "value": Decimal(line["unit_price"]) * line["quantity"],
            "lines": 1,
            "kind": "order",
        }
        for number, line in enumerate(payload["lines"], start=1)
    ]


async def scratch_schema(
    database_url: str, schema: str, migrations: Path = Path(QUERY_API_MIGRATIONS)
) -> list[LineTable]:
    """query-api's migrations applied to `schema`; its tables of order lines with the columns the bench fills."""
    await migrate(database_url, schema, migrations)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(_COLUMNS, schema)
    finally:
        await conn.close()
    tables: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        tables.setdefault(r["table_name"], []).append(r)
    found = []
    for table, columns in sorted(tables.items()):
        names = {c["column_name"] for c in columns}
        if "sku_id" not in names or not names & {"order_id", "document_id"}:
            continue
        unknown = [c["column_name"] for c in columns
                   if c["column_name"] not in FACTS and not c["nullable"] and not c["has_default"]]  # fmt: skip
        if unknown:
            raise RuntimeError(f"bench/line_facts.py: no line fact for {table}.{', '.join(unknown)}: add it to FACTS")
        found.append(LineTable(table, tuple(c["column_name"] for c in columns if c["column_name"] in FACTS)))
    if not found:
        raise RuntimeError(f"no table of order lines (an order id and sku_id) in query-api's migrations ({schema})")
    return found


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def index_definitions(conn: asyncpg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    """(index name, CREATE INDEX statement) of each index of the table (its primary key and unique ones too)."""
    return [(r["indexname"], r["indexdef"]) for r in await conn.fetch(_INDEXES, schema, table)]
