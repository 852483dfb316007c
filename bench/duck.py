"""query-api's tables in DuckDB: each table a statement names, exported from PostgreSQL (CSV, then Parquet) with
its columns typed from the catalog, opened as a view of the same name. Which tables and columns are read from the
database, so this follows query-api's migrations."""

import asyncio
import re
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import duckdb

from bench.line_facts import quoted

_TABLES = """
SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type IN ('BASE TABLE', 'VIEW')
"""
_PARTITIONED = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'p'"  # noqa: E501
_COLUMNS = """
SELECT column_name, data_type, numeric_precision, numeric_scale
FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position
"""
_SIMPLE = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "date": "DATE",
    "timestamp with time zone": "TIMESTAMPTZ",
    "timestamp without time zone": "TIMESTAMP",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "boolean": "BOOLEAN",
    "uuid": "UUID",
    "jsonb": "VARCHAR",
    "json": "VARCHAR",
}


def duck_type(data_type: str, precision: int | None, scale: int | None) -> str | None:
    """DuckDB's type for a PostgreSQL column; None for one not exported (bytea, arrays)."""
    if data_type == "numeric":
        return f"DECIMAL({precision},{scale})" if precision and precision <= 38 else "DECIMAL(38,10)"
    return _SIMPLE.get(data_type)


async def tables_named(conn: asyncpg.Connection, schema: str, statements: Iterable[str]) -> list[str]:
    """Tables and views of `schema` (partitioned parents included) whose name appears as a word in any statement."""
    names = {r[0] for r in await conn.fetch(_TABLES, schema)} | {r[0] for r in await conn.fetch(_PARTITIONED, schema)}
    text = "\n".join(statements)
    return sorted(n for n in names if re.search(rf"\b{re.escape(n)}\b", text))


async def export(
    database_url: str, schema: str, statements: Iterable[str], directory: Path
) -> tuple[duckdb.DuckDBPyConnection, dict[str, tuple[int, int]]]:
    """An in-memory DuckDB with a view per table the statements name (Parquet copies); each table's rows in
    PostgreSQL and in DuckDB (they must agree)."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    duck = duckdb.connect()
    conn = await asyncpg.connect(database_url)
    try:
        tables = await tables_named(conn, schema, statements)
        counts = {}
        for table in tables:
            columns = {
                r["column_name"]: kind
                for r in await conn.fetch(_COLUMNS, schema, table)
                if (kind := duck_type(r["data_type"], r["numeric_precision"], r["numeric_scale"])) is not None
            }
            csv_file, parquet = directory / f"{table}.csv", directory / f"{table}.parquet"
            select = f"SELECT {', '.join(quoted(c) for c in columns)} FROM {quoted(schema)}.{quoted(table)}"  # noqa: S608
            await conn.copy_from_query(select, output=csv_file, format="csv", header=True)
            types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
            # Names and paths come from the catalog and this run's directory, not from input.
            read = f"SELECT * FROM read_csv('{csv_file}', header = true, columns = {{{types}}})"  # noqa: S608
            await asyncio.to_thread(duck.execute, f"COPY ({read}) TO '{parquet}' (FORMAT parquet)")
            csv_file.unlink()
            duck.execute(f"CREATE VIEW {quoted(table)} AS SELECT * FROM read_parquet('{parquet}')")  # noqa: S608
            in_postgres = await conn.fetchval(f"SELECT count(*) FROM {quoted(schema)}.{quoted(table)}")  # noqa: S608
            in_duckdb = duck.execute(f"SELECT count(*) FROM {quoted(table)}").fetchall()[0][0]  # noqa: S608
            counts[table] = (int(in_postgres), int(in_duckdb))
    finally:
        await conn.close()
    return duck, counts
