"""query-api's schema changes keep the figures already applied."""

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import asyncpg

import query_api
from sellthrough_runtime.db import migrate
from tests.conftest import Infra

MIGRATIONS = Path(query_api.__file__).parent / "migrations"
DAY = date(2026, 11, 2)


async def test_sales_daily_takes_the_rep_from_the_kpi_cube_it_replaces(infra: Infra, tmp_path: Path) -> None:
    schema = "query_api_before_sales_by_rep"
    for migration in sorted(MIGRATIONS.glob("000[1-6]*.sql")):
        shutil.copy(migration, tmp_path / migration.name)
    await migrate(infra.database_url, schema, tmp_path)
    conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    try:
        # The same order lines in both cubes, as the projection wrote them before 0007: two reps at one outlet.
        await conn.execute(
            "INSERT INTO sales_daily VALUES ($1, 'O1', 'S1', 31.50, 3, 2), ($1, 'O2', 'S1', 10.50, 1, 1)", DAY
        )
        await conn.execute(
            "INSERT INTO kpi_sales_daily VALUES ($1, 'REP-1', 'O1', 'S1', 21.00, 2, 1), "
            "($1, 'REP-2', 'O1', 'S1', 10.50, 1, 1), ($1, 'REP-1', 'O2', 'S1', 10.50, 1, 1)",
            DAY,
        )
        await migrate(infra.database_url, schema, MIGRATIONS)

        rows = await conn.fetch(
            "SELECT day, outlet_id, sku_id, rep_id, value, units, lines FROM sales_daily ORDER BY outlet_id, rep_id"
        )
        assert [tuple(r) for r in rows] == [
            (DAY, "O1", "S1", "REP-1", Decimal("21.0000"), 2, 1),
            (DAY, "O1", "S1", "REP-2", Decimal("10.5000"), 1, 1),
            (DAY, "O2", "S1", "REP-1", Decimal("10.5000"), 1, 1),
        ]
        assert await conn.fetchval("SELECT to_regclass('kpi_sales_daily')") is None
        indexes = {
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'sales_daily' AND schemaname = $1", schema
            )
        }
        assert indexes == {"sales_daily_pkey", "sales_daily_by_outlet", "sales_daily_by_sku"}
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_rows_applied_before_net_sales_count_as_ordered(infra: Infra, tmp_path: Path) -> None:
    """Before 0008 every order counted as placed: its figures become the ordered ones, nothing cancelled."""
    schema = "query_api_before_net_sales"
    for migration in sorted(MIGRATIONS.glob("000[1-7]*.sql")):
        shutil.copy(migration, tmp_path / migration.name)
    await migrate(infra.database_url, schema, tmp_path)
    conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    try:
        await conn.execute("INSERT INTO sales_daily VALUES ($1, 'O1', 'S1', 'REP-1', 31.50, 3, 2)", DAY)
        await conn.execute("INSERT INTO sales_outlet_daily VALUES ('O1', $1, 31.50, 3, 2)", DAY)
        await conn.execute("INSERT INTO sales_distributor_daily VALUES ($1, 'D1', 31.50, 3, 2)", DAY)
        await conn.execute("INSERT INTO sales_distributor_brand_daily VALUES ($1, 'D1', 'Tea', 31.50, 3, 2)", DAY)
        await migrate(infra.database_url, schema, MIGRATIONS)

        for table in ("sales_daily", "sales_outlet_daily", "sales_distributor_daily", "sales_distributor_brand_daily"):
            row = await conn.fetchrow(
                f"SELECT value, units, lines, ordered_value, ordered_units, cancelled_units, returned_units, "
                f"delivered_units FROM {table}"
            )
            assert tuple(row) == (Decimal("31.5000"), 3, 2, Decimal("31.5000"), 3, 0, 0, 0), table
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_stock_values_already_applied_as_floats_become_the_exact_decimals_they_stood_for(
    infra: Infra, tmp_path: Path
) -> None:
    schema = "query_api_before_numeric_stock_values"
    for migration in sorted(MIGRATIONS.glob("00*.sql")):
        if migration.name < "0011":
            shutil.copy(migration, tmp_path / migration.name)
    await migrate(infra.database_url, schema, tmp_path)
    conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    try:
        # As StockPositionChanged v1 carried them: binary floats, here one of a value of 7,600,631.99.
        await conn.execute(
            "INSERT INTO stock_positions VALUES ('D1', 'S1', 723868, 7600631.990000007, now(), 1), "
            "('D1', 'S2', -3, -31.499999999999996, now(), 1)"
        )
        await conn.execute(
            "INSERT INTO stock_variances VALUES ('D1', 'C1', 'S1', now(), 10, 7, -3, -31.499999999999996, 1)"
        )
        await migrate(infra.database_url, schema, MIGRATIONS)

        values = await conn.fetch("SELECT value FROM stock_positions ORDER BY sku_id")
        assert [r["value"] for r in values] == [Decimal("7600631.9900"), Decimal("-31.5000")]
        assert await conn.fetchval("SELECT variance_value FROM stock_variances") == Decimal("-31.5000")
        assert await conn.fetchval("SELECT sum(value) FROM stock_positions") == Decimal("7600600.4900")
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
