"""`sellthrough-retention sizes`: what the tables retention prunes (and their unpruned neighbours) hold and
cost on disk, per row, in a service's schema, so docs/retention.md's figures can be checked on a real database.
Reads DATABASE_URL like the services."""

import asyncio
import os

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

console = Console()

TABLES = ("outbox", "idempotency_keys", "processed_events", "business_keys", "dead_letters")
"""The tables retention prunes, and those beside them that grow per event."""

_SIZES = """
SELECT c.relname AS table, c.reltuples::bigint AS estimated_rows, pg_total_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2::text[])
ORDER BY c.relname
"""

app = typer.Typer(help="Retention: what the pruned tables hold and cost on disk.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Retention of outbox rows, idempotency keys and processed ids: docs/retention.md."""


@app.command("sizes")
def sizes_command(
    schema: str = typer.Option(..., "--schema", help="A service's schema: order_capture, stock_ledger, ..."),
    exact: bool = typer.Option(False, "--exact", help="Count rows (reads each table) instead of the estimate."),
) -> None:
    """Rows, total bytes (heap, TOAST, indexes) and bytes per row of each table, in the schema."""
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    found = asyncio.run(_sizes(database_url, schema, exact))
    table = Table("table", "rows", "MiB", "bytes/row")
    for name, rows, size in found:
        table.add_row(name, f"{rows:,}", f"{size / 2**20:,.1f}", f"{size / rows:,.0f}" if rows > 0 else "-")
    console.print(table)


async def _sizes(database_url: str, schema: str, exact: bool) -> list[tuple[str, int, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        found = []
        for row in await conn.fetch(_SIZES, schema, list(TABLES)):
            rows = row["estimated_rows"]
            if exact or rows < 0:  # -1: never analysed
                # The name comes from pg_class, matched against TABLES: quoted as an identifier all the same.
                counted = "SELECT count(*) FROM " + _quoted(schema) + "." + _quoted(row["table"])  # noqa: S608
                rows = await conn.fetchval(counted)
            found.append((row["table"], int(rows), int(row["bytes"])))
        return found
    finally:
        await conn.close()


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
