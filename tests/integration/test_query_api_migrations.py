"""query-api's schema changes keep the figures already applied."""

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

import query_api
from query_api.projections.sales import prepare_sales, write_sales
from query_api.projections.sales_fold import fold
from sellthrough_contracts.registry import parse_event
from sellthrough_runtime.db import migrate
from tests.conftest import Infra
from tests.support.brand import event

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
        # Up to the fact table (0015), which turns sales_daily into a view.
        for migration in sorted(MIGRATIONS.glob("00*.sql")):
            if migration.name < "0015":
                shutil.copy(migration, tmp_path / migration.name)
        await migrate(infra.database_url, schema, tmp_path)

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


# Sales as the projection held them before the fact table (0008..0014): order A1 (two SKUs) cancelled, order A2
# delivered with a SKU it did not list, a damaged retailer return, and a row from before 0008 that no fact explains.
_ORDERS = """
INSERT INTO sales_orders VALUES
    ('D1', 'A1', gen_random_uuid(), 'O1', 'REP-1', $1, now(), now(), 'app', 'rep', NULL, NULL, NULL, NULL),
    ('D1', 'A2', gen_random_uuid(), 'O1', 'REP-2', $1, now(), now(), 'app', 'rep', NULL, NULL, NULL, NULL);
INSERT INTO sales_order_skus VALUES
    ('D1', 'A1', 'S1', 2, 21.00, 1, true, 0), ('D1', 'A1', 'S2', 1, 5.00, 1, true, 0),
    ('D1', 'A2', 'S1', 3, 31.50, 1, false, 3), ('D1', 'A2', 'S9', 0, 0, 0, false, 2);
INSERT INTO sales_cancellations VALUES ('D1', 'A1', gen_random_uuid(), 'O1', now(), now(), 'app', 'rep', 'closed');
INSERT INTO sales_deliveries VALUES ('D1', 'DL-2', gen_random_uuid(), 'A2', 'O1', now(), now(), 'erp', 'erp');
INSERT INTO sales_delivery_lines VALUES ('D1', 'DL-2', 'S1', 3), ('D1', 'DL-2', 'S9', 2);
INSERT INTO sales_returns VALUES
    ('D1', 'R1', gen_random_uuid(), 'O1', 'from_retailer', 'damaged', $1, now(), now(), 'app', 'rep');
INSERT INTO sales_return_lines VALUES ('D1', 'R1', 'S1', 1, 10.50);
"""
_CUBE = """
INSERT INTO sales_daily (day, outlet_id, sku_id, rep_id, value, units, lines, ordered_value, ordered_units,
                         cancelled_value, cancelled_units, returned_value, returned_units, returned_damaged_units,
                         delivered_units) VALUES
    ($1, 'O1', 'S1', 'REP-1', 0, 0, 0, 21.00, 2, 21.00, 2, 0, 0, 0, 0),
    ($1, 'O1', 'S2', 'REP-1', 0, 0, 0, 5.00, 1, 5.00, 1, 0, 0, 0, 0),
    ($1, 'O1', 'S1', 'REP-2', 31.50, 3, 1, 31.50, 3, 0, 0, 0, 0, 0, 3),
    ($1, 'O1', 'S9', 'REP-2', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2),
    ($1, 'O1', 'S1', '', -10.50, -1, 0, 0, 0, 0, 0, 10.50, 1, 1, 0),
    ($1, 'O2', 'S1', 'REP-3', 7.00, 1, 1, 7.00, 1, 0, 0, 0, 0, 0, 0)
"""
_CUBE_ROWS = "SELECT * FROM sales_daily ORDER BY outlet_id, sku_id, rep_id"
_ORDER_SKUS = "SELECT sku_id, ordered_units, ordered_value, lines, cancelled_counted, delivered_counted FROM {}"


async def test_sales_lines_keep_every_figure_and_order_state_of_an_upgraded_database(
    infra: Infra, tmp_path: Path
) -> None:
    schema = "query_api_before_sales_lines"
    for migration in sorted(MIGRATIONS.glob("00*.sql")):
        if migration.name < "0015":
            shutil.copy(migration, tmp_path / migration.name)
    await migrate(infra.database_url, schema, tmp_path)
    conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    try:
        for statement in _ORDERS.strip().split(";\n"):
            await conn.execute(statement, *([DAY] if "$1" in statement else []))
        await conn.execute(_CUBE, DAY)
        cube = [tuple(r) for r in await conn.fetch(_CUBE_ROWS)]
        order_skus = {
            order: [
                tuple(r)
                for r in await conn.fetch(
                    _ORDER_SKUS.format("sales_order_skus WHERE order_id = $1 ORDER BY sku_id"), order
                )
            ]
            for order in ("A1", "A2")
        }
        await migrate(infra.database_url, schema, MIGRATIONS)

        assert [tuple(r) for r in await conn.fetch(_CUBE_ROWS)] == cube
        for order, rows in order_skus.items():
            found = await conn.fetch(_ORDER_SKUS.format("sales_order_skus('D1', $1) ORDER BY sku_id"), order)
            assert [tuple(r) for r in found] == rows, order
        kinds = await conn.fetch("SELECT kind, count(*) FROM sales_lines GROUP BY kind ORDER BY kind")
        assert [tuple(r) for r in kinds] == [("adjust", 4), ("legacy", 1), ("order", 3), ("return", 1)]

        # The migrated rows are what the projection reconciles against: A1 delivered now, so its cancellation no
        # longer counts (appended back), and its delivered units join its rows.
        delivery = event(
            "OrderDelivered",
            {
                "delivery_id": "DL-1",
                "order_id": "A1",
                "outlet_id": "O1",
                "distributor_id": "D1",
                "lines": [{"sku_id": "S1", "quantity": 2}],
            },
        )
        writes = prepare_sales([parse_event(delivery)], ZoneInfo("UTC"))
        async with conn.transaction():
            await write_sales(conn, writes)
        rep_1 = await conn.fetch(
            "SELECT sku_id, value, units, lines, cancelled_units, delivered_units FROM sales_daily "
            "WHERE rep_id = 'REP-1' ORDER BY sku_id"
        )
        assert [tuple(r) for r in rep_1] == [("S1", Decimal("21.00"), 2, 1, 0, 2), ("S2", Decimal("5.00"), 1, 1, 0, 0)]
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_running_totals_start_from_the_outlet_days_already_folded(infra: Infra, tmp_path: Path) -> None:
    """0027 fills sales_outlet_running (a row for every day from an outlet's first to its last, summed up to it)
    and sales_outlet_totals from sales_outlet_daily as it stands."""
    schema = "query_api_before_outlet_running"
    for migration in sorted(MIGRATIONS.glob("00*.sql")):
        if migration.name < "0027":
            shutil.copy(migration, tmp_path / migration.name)
    await migrate(infra.database_url, schema, tmp_path)
    conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    zeros = ", 0" * 10
    try:
        await conn.execute(f"INSERT INTO sales_outlet_daily VALUES ('O1', $1, 10.50, 3, 2{zeros})", DAY)
        await conn.execute(f"INSERT INTO sales_outlet_daily VALUES ('O1', $1, 1.25, 1, 1{zeros})", date(2026, 11, 4))
        await conn.execute(f"INSERT INTO sales_outlet_daily VALUES ('O2', $1, 2.00, 2, 1{zeros})", DAY)
        await migrate(infra.database_url, schema, MIGRATIONS)

        running = await conn.fetch(
            "SELECT day, outlet_id, days, value, units, lines FROM sales_outlet_running ORDER BY 2, 1"
        )
        assert [tuple(r) for r in running] == [
            (DAY, "O1", 1, Decimal("10.5000"), 3, 2),
            (date(2026, 11, 3), "O1", 1, Decimal("10.5000"), 3, 2),
            (date(2026, 11, 4), "O1", 2, Decimal("11.7500"), 4, 3),
            (DAY, "O2", 1, Decimal("2.0000"), 2, 1),
        ]
        totals = await conn.fetch("SELECT outlet_id, day, days, value FROM sales_outlet_totals ORDER BY 1")
        assert [tuple(r) for r in totals] == [
            ("O1", date(2026, 11, 4), 2, Decimal("11.7500")),
            ("O2", DAY, 1, Decimal("2.0000")),
        ]
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


_LINE = (
    "INSERT INTO {} (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units, lines)"
    " VALUES ($1, 'D1', $2, 'order', 'O1', $3, 'REP-1', $4, 1, 1)"
)


async def test_brand_running_totals_start_from_the_lines_already_folded(infra: Infra, tmp_path: Path) -> None:
    """0028 fills sales_outlet_brand_running (a row per (brand, outlet, day) with lines, summed up to it; 0032 drops
    each pair's last, kept in its totals row) and
    sales_outlet_brand_totals from sales_lines less the queued lines, which the fold adds afterwards; lines of a
    SKU without a brand are left out."""
    schema = "query_api_before_brand_running"
    for migration in sorted(MIGRATIONS.glob("00*.sql")):
        if migration.name < "0028":
            shutil.copy(migration, tmp_path / migration.name)
    await migrate(infra.database_url, schema, tmp_path)
    conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": schema})
    later = date(2026, 11, 4)
    try:
        await conn.execute(
            "INSERT INTO skus (sku_id, name, brand, category, list_price, occurred_at)"
            " VALUES ('S1', 'Tea 1', 'Tea', 'c', 1, now()), ('S2', 'Bis 1', 'Biscuits', 'c', 1, now())"
        )
        await conn.execute("SELECT sales_lines_month($1)", DAY)
        for day, document, sku, value in (
            (DAY, "A1", "S1", 10), (later, "A2", "S1", 5), (DAY, "A1", "S2", 3), (DAY, "A3", "S3", 8)
        ):  # fmt: skip
            await conn.execute(_LINE.format("sales_lines"), day, document, sku, value)
        # A line appended and queued, not folded yet.
        await conn.execute(_LINE.format("sales_lines"), later, "A4", "S1", 7)
        await conn.execute(
            "INSERT INTO sales_lines_unfolded SELECT day, outlet_id, sku_id, value, units, lines, ordered_value,"
            " ordered_units, cancelled_value, cancelled_units, returned_value, returned_units, returned_damaged_units,"
            " returned_expired_units, returned_unsold_units, delivered_units FROM sales_lines WHERE document_id = 'A4'"
        )
        await migrate(infra.database_url, schema, MIGRATIONS)

        query = "SELECT brand, outlet_id, day, rows, value FROM sales_outlet_brand_running ORDER BY 1, 2, 3"
        # A pair's last day is in its totals row only (0032).
        assert [tuple(r) for r in await conn.fetch(query)] == [("Tea", "O1", DAY, 1, Decimal("10.0000"))]
        totals = "SELECT brand, first_day, day, rows, value FROM sales_outlet_brand_totals ORDER BY 1"
        assert [tuple(r) for r in await conn.fetch(totals)] == [
            ("Biscuits", DAY, DAY, 1, Decimal("3.0000")),
            ("Tea", DAY, later, 2, Decimal("15.0000")),
        ]
        async with conn.transaction():
            await fold(conn)
        assert [tuple(r) for r in await conn.fetch(query)] == [("Tea", "O1", DAY, 1, Decimal("10.0000"))]
        assert [tuple(r) for r in await conn.fetch(totals)][-1] == ("Tea", DAY, later, 3, Decimal("22.0000"))
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
