"""bench/query_data.py fills query-api's projection by SQL through the bulk path, for the queries scenario at 10M
lines. What it loads must be a projection the service could hold: every rollup a regrouping of the order lines
under the reference data, and the drill-down statements agreeing with the statement over the lines."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from bench import query_data
from query_api.main import SCHEMA
from query_api.reads.sales import _DRILL_SQL, DrillQuery, Level, drill
from tests.conftest import Infra

# Rows of a rollup that its regrouping of sales_lines lacks, or has with other figures (both directions).
_OUTLET_ROLLUP_DIFFERENCE = """
SELECT count(*) FROM (
    (SELECT outlet_id, day, value, units, lines FROM sales_outlet_daily
     EXCEPT SELECT outlet_id, day, sum(value), sum(units), sum(lines) FROM sales_lines GROUP BY 1, 2)
    UNION ALL
    (SELECT outlet_id, day, sum(value), sum(units), sum(lines) FROM sales_lines GROUP BY 1, 2
     EXCEPT SELECT outlet_id, day, value, units, lines FROM sales_outlet_daily)
) AS d
"""
_SKU_ROLLUP_DIFFERENCE = """
WITH regrouped AS (
    SELECT s.day, o.distributor_id, s.sku_id, sum(s.value) AS value, sum(s.units) AS units, sum(s.lines) AS lines
    FROM sales_lines s LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
    GROUP BY 1, 2, 3
)
SELECT count(*) FROM (
    (SELECT day, distributor_id, sku_id, value, units, lines FROM sales_distributor_sku_daily EXCEPT
     SELECT * FROM regrouped)
    UNION ALL
    (SELECT * FROM regrouped EXCEPT
     SELECT day, distributor_id, sku_id, value, units, lines FROM sales_distributor_sku_daily)
) AS d
"""


def test_the_loaded_projection_is_one_the_service_could_hold(infra: Infra) -> None:
    async def run() -> None:
        loaded = await query_data.load(infra.database_url, 7_000)
        assert 5_000 < loaded < 9_000, "about the lines asked for (orders of 1 to 6 lines)"
        conn = await asyncpg.connect(infra.database_url, server_settings={"search_path": SCHEMA})
        try:
            assert await conn.fetchval("SELECT sum(lines) FROM sales_lines WHERE kind = 'order'") == loaded
            assert await conn.fetchval("SELECT count(*) FROM sales_lines WHERE kind <> 'order'") == 0
            assert await conn.fetchval(_OUTLET_ROLLUP_DIFFERENCE) == 0
            assert await conn.fetchval(_SKU_ROLLUP_DIFFERENCE) == 0
            today = datetime.now(UTC).date()
            period = (today - timedelta(days=91), today)
            national = await drill(conn, DrillQuery(Level.NATIONAL, None, *period))
            assert national.total["lines"] == loaded
            distributor = await conn.fetchval("SELECT distributor_id FROM distributors ORDER BY 1 LIMIT 1")
            brand = await conn.fetchval("SELECT brand FROM skus ORDER BY 1 LIMIT 1")
            sku = await conn.fetchval("SELECT sku_id FROM skus ORDER BY 1 LIMIT 1")
            for query in (
                DrillQuery(Level.OUTLET, distributor, *period),
                DrillQuery(Level.OUTLET, distributor, *period, brand=brand),
                DrillQuery(Level.OUTLET, distributor, *period, sku_id=sku),
                DrillQuery(Level.DISTRIBUTOR, None, *period, sku_id=sku),
            ):
                assert await drill(conn, query) == await drill(conn, query, statement=_DRILL_SQL), query
        finally:
            await conn.close()

    asyncio.run(run())
