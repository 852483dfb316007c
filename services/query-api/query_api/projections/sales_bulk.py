"""The sales projection's bulk path for a rebuild (base.BulkLoader): a replayed log's orders, cancellations,
deliveries and returns are copied (binary COPY) into unindexed staging tables, and `finish` derives from them, set
based, exactly what the live path (sales.py) leaves: the facts with the first event of each id winning, the
order-line fact table with one compensating row per order and SKU for its final cancellation and deliveries, the
rollups, and the secondary indexes, dropped by `start` and built once at the end.

The staging tables and the dropped indexes' definitions are kept in the schema, not in this object, so a load
interrupted before `finish` can go on from another process. Reference data (outlets, SKUs) is loaded by its own
projection alongside; `finish` values returns and places rollups with what it holds by then, which is where the
live path's moves and revaluations end up.
"""

import logging
import time
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.figures.measures import RETURN_REASONS, column_list, sums
from query_api.projections.freshness import newest_times, record_freshness
from query_api.projections.sales_facts import collect_sales
from query_api.projections.sales_monthly import bulk_outlet_months
from query_api.projections.sales_running import TABLES as RUNNING_TABLES
from query_api.projections.sales_running import bulk_outlet_running

log = logging.getLogger(__name__)

_ORDER_COLUMNS = (
    "distributor_id, order_id, event_id, outlet_id, rep_id, day, occurred_at, recorded_at, source, actor, visit_id, "
    "lat, lon, accuracy_m"
)
_CANCELLATION_COLUMNS = "distributor_id, order_id, event_id, outlet_id, occurred_at, recorded_at, source, actor, reason"
_DELIVERY_COLUMNS = (
    "distributor_id, delivery_id, event_id, order_id, outlet_id, occurred_at, recorded_at, source, actor"
)
_RETURN_COLUMNS = (
    "distributor_id, return_id, event_id, outlet_id, direction, reason, day, occurred_at, recorded_at, source, actor"
)
_SECONDARY_OF = (
    "sales_lines",
    "sales_orders",
    "sales_deliveries",
    "sales_returns",
    "sales_return_lines",
    "sales_outlet_daily",
    "sales_outlet_monthly",
    "sales_distributor_sku_daily",
    "sales_distributor_brand_daily",
    "sales_distributor_daily",
)
"""The tables whose secondary indexes are built after the load (primary keys of the facts stay: they are what
dedupes). The rollups are among them: inserting their rows into indexed tables cost about as much as grouping them
(measured: 2.7 s of 5.1 s for the SKU rollup of 200k lines)."""
_KEYS_OF = (
    "sales_outlet_monthly",
    *RUNNING_TABLES,
    "sales_distributor_sku_daily",
    "sales_distributor_brand_daily",
    "sales_distributor_daily",
)
"""Rollups whose unique constraints are dropped too and added back after: `finish` inserts each key once (GROUP BY
groups NULLs together, as their NULLS NOT DISTINCT keys have it), and nothing else writes them during a bulk load."""

# `seq` (a sequence, so it keeps counting across processes) is the log order among events of one id. Autovacuum is
# kept off the staging tables: read once by `finish`, then dropped, they need no statistics or vacuum, which
# autovacuum would otherwise spend on them while they fill.
_START = """
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_indexes (
    name text PRIMARY KEY, definition text NOT NULL, drop_statement text NOT NULL, at_finish boolean NOT NULL
);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_orders (seq bigserial, LIKE sales_orders)
WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_order_lines (
    distributor_id text, order_id text, event_id uuid, sku_id text, units bigint, value numeric, lines int
) WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_cancellations (seq bigserial, LIKE sales_cancellations)
WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_deliveries (seq bigserial, LIKE sales_deliveries)
WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_delivery_lines (
    distributor_id text, delivery_id text, event_id uuid, sku_id text, units bigint
) WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_returns (seq bigserial, LIKE sales_returns)
WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_return_lines (
    distributor_id text, return_id text, event_id uuid, sku_id text, units bigint
) WITH (autovacuum_enabled = false);
"""
# Indexes that back no constraint, and the rollups' unique keys (_KEYS_OF), recorded before they are dropped (a
# partitioned table's: its partitions' go too). Each with the statement that drops it and whether `finish` drops it.
_RECORD_INDEXES = """
INSERT INTO sales_bulk_indexes (name, definition, drop_statement, at_finish)
SELECT c.relname, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '),
       format('DROP INDEX IF EXISTS %I', c.relname), false
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY($1::text[]::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
UNION ALL
SELECT k.conname,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid)),
       format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', k.conrelid::regclass, k.conname), true
FROM pg_constraint k
WHERE k.conrelid = ANY($2::text[]::regclass[]) AND k.contype IN ('u', 'p')
ON CONFLICT DO NOTHING
"""


def _drop_recorded(at_finish: bool) -> str:
    """`start` drops the indexes; `finish` the rollups' keys, which the dimensions projection's live writes name (ON
    CONFLICT ON CONSTRAINT) while the reference topic is read, on rollups still empty then."""
    return f"""
DO $$
DECLARE
    recorded record;
BEGIN
    FOR recorded IN SELECT drop_statement FROM sales_bulk_indexes WHERE at_finish = {"true" if at_finish else "false"}
    LOOP
        EXECUTE recorded.drop_statement;
    END LOOP;
END
$$
"""  # noqa: S608 (a boolean literal)


_DROP_INDEXES = _drop_recorded(at_finish=False)
_DROP_KEYS = _drop_recorded(at_finish=True)
_CREATE_INDEXES = """
DO $$
DECLARE
    recorded record;
BEGIN
    FOR recorded IN SELECT definition FROM sales_bulk_indexes ORDER BY name LOOP
        EXECUTE recorded.definition;
    END LOOP;
END
$$
"""
# The whole log is grouped and indexed in one go: enough memory that it is not spilled to disk in pieces (for this
# transaction only).
_MEMORY = "SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '512MB'"
_PARTITIONS = """
SELECT count(sales_lines_month(m)) FROM (
    SELECT date_trunc('month', day)::date AS m FROM sales_bulk_orders
    UNION SELECT date_trunc('month', day)::date FROM sales_bulk_returns
) AS months
"""
# The first event of each id wins, as ON CONFLICT DO NOTHING has it live; lines are those of the winning event.
_FACTS = f"""
INSERT INTO sales_orders ({_ORDER_COLUMNS})
SELECT DISTINCT ON (distributor_id, order_id) {_ORDER_COLUMNS} FROM sales_bulk_orders
ORDER BY distributor_id, order_id, seq;
INSERT INTO sales_cancellations ({_CANCELLATION_COLUMNS})
SELECT DISTINCT ON (distributor_id, order_id) {_CANCELLATION_COLUMNS} FROM sales_bulk_cancellations
ORDER BY distributor_id, order_id, seq;
INSERT INTO sales_deliveries ({_DELIVERY_COLUMNS})
SELECT DISTINCT ON (distributor_id, delivery_id) {_DELIVERY_COLUMNS} FROM sales_bulk_deliveries
ORDER BY distributor_id, delivery_id, seq;
INSERT INTO sales_delivery_lines (distributor_id, delivery_id, sku_id, units)
SELECT l.distributor_id, l.delivery_id, l.sku_id, l.units
FROM sales_bulk_delivery_lines l
JOIN sales_deliveries d ON d.distributor_id = l.distributor_id AND d.delivery_id = l.delivery_id
                       AND d.event_id = l.event_id;
INSERT INTO sales_returns ({_RETURN_COLUMNS})
SELECT DISTINCT ON (distributor_id, return_id) {_RETURN_COLUMNS} FROM sales_bulk_returns
ORDER BY distributor_id, return_id, seq;
INSERT INTO sales_return_lines (distributor_id, return_id, sku_id, units, counted_value)
SELECT l.distributor_id, l.return_id, l.sku_id, l.units,
       CASE WHEN r.direction = 'from_retailer' AND r.outlet_id IS NOT NULL THEN l.units * k.list_price END
FROM sales_bulk_return_lines l
JOIN sales_returns r ON r.distributor_id = l.distributor_id AND r.return_id = l.return_id AND r.event_id = l.event_id
LEFT JOIN skus k ON k.sku_id = l.sku_id;
"""  # noqa: S608 (column lists fixed at import)
_LINES = f"""
INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units, lines,
                         ordered_value, ordered_units)
SELECT o.day, o.distributor_id, o.order_id, 'order', o.outlet_id, l.sku_id, o.rep_id, l.value, l.units, l.lines,
       l.value, l.units
FROM sales_bulk_order_lines l
JOIN sales_orders o ON o.distributor_id = l.distributor_id AND o.order_id = l.order_id AND o.event_id = l.event_id;
-- What the live path's compensating rows add up to: the final cancellation and deliveries, one row per order and
-- SKU (only orders that have either).
WITH facts AS (
    SELECT o.distributor_id, o.order_id, o.day, o.outlet_id, o.rep_id, o.event_id,
           c.order_id IS NOT NULL AS has_cancellation,
           EXISTS (
               SELECT 1 FROM sales_deliveries d WHERE d.distributor_id = o.distributor_id AND d.order_id = o.order_id
           ) AS has_delivery
    FROM sales_orders o
    LEFT JOIN sales_cancellations c ON c.distributor_id = o.distributor_id AND c.order_id = o.order_id
), touched AS (
    SELECT distributor_id, order_id, day, outlet_id, rep_id, event_id,
           has_cancellation AND NOT has_delivery AS cancelled
    FROM facts
    WHERE has_cancellation OR has_delivery
), ordered AS (
    SELECT t.distributor_id, t.order_id, l.sku_id, l.units, l.value, l.lines
    FROM touched t
    JOIN sales_bulk_order_lines l ON l.distributor_id = t.distributor_id AND l.order_id = t.order_id
                                 AND l.event_id = t.event_id
), delivered AS (
    SELECT d.distributor_id, d.order_id, dl.sku_id, sum(dl.units) AS units
    FROM touched t
    JOIN sales_deliveries d ON d.distributor_id = t.distributor_id AND d.order_id = t.order_id
    JOIN sales_delivery_lines dl ON dl.distributor_id = d.distributor_id AND dl.delivery_id = d.delivery_id
    GROUP BY 1, 2, 3
), state AS (
    SELECT t.day, t.distributor_id, t.order_id, t.outlet_id, t.rep_id, coalesce(x.sku_id, v.sku_id) AS sku_id,
           coalesce(x.units, 0) AS units, coalesce(x.value, 0) AS value, coalesce(x.lines, 0) AS lines,
           CASE WHEN t.cancelled AND (x.units <> 0 OR x.value <> 0 OR x.lines <> 0) THEN 1 ELSE 0 END AS sign,
           coalesce(v.units, 0) AS delivered
    FROM (ordered x FULL JOIN delivered v
          ON v.distributor_id = x.distributor_id AND v.order_id = x.order_id AND v.sku_id = x.sku_id)
    JOIN touched t ON t.distributor_id = coalesce(x.distributor_id, v.distributor_id)
                  AND t.order_id = coalesce(x.order_id, v.order_id)
)
INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, cancel_mark, value,
                         units, lines, cancelled_value, cancelled_units, delivered_units)
SELECT day, distributor_id, order_id, 'adjust', outlet_id, sku_id, rep_id, sign, -sign * value, -sign * units,
       -sign * lines, sign * value, sign * units, delivered
FROM state
WHERE sign <> 0 OR delivered <> 0;
INSERT INTO sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id, value, units,
                         returned_value, returned_units, {", ".join(f"returned_{r}_units" for r in RETURN_REASONS)})
SELECT r.day, r.distributor_id, r.return_id, 'return', r.outlet_id, l.sku_id, '', -coalesce(l.counted_value, 0),
       -l.units, coalesce(l.counted_value, 0), l.units,
       {", ".join(f"CASE r.reason WHEN '{reason}' THEN l.units ELSE 0 END" for reason in RETURN_REASONS)}
FROM sales_return_lines l
JOIN sales_returns r ON r.distributor_id = l.distributor_id AND r.return_id = l.return_id
WHERE r.direction = 'from_retailer' AND r.outlet_id IS NOT NULL;
"""  # noqa: S608 (names from figures.measures, fixed at import)
# The rollups as a regrouping of every line, under the outlet's distributor and the SKU's brand known now: lines
# once per outlet and day, and once per distributor and SKU; the coarser ones regroup the SKU rollup (a SKU has
# one brand).
#
# Grouped by sorting, not hashing: a hash table holds every group's 13 transition states at once (numeric and
# int128 sums are allocated per group: 266 MB for the SKU rollup of 200k lines, which spills to disk at larger
# logs), a sorted group reuses them. Measured on 200k lines: 1.48 s CPU against 1.71-1.84 s for the four.
_ROLLUPS = f"""
SET LOCAL enable_hashagg = off;
INSERT INTO sales_outlet_daily (outlet_id, day, {column_list()})
SELECT outlet_id, day, {sums()} FROM sales_lines GROUP BY outlet_id, day;
INSERT INTO sales_distributor_sku_daily (day, distributor_id, sku_id, {column_list()})
SELECT s.day, o.distributor_id, s.sku_id, {sums("s.")}
FROM sales_lines s
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
GROUP BY s.day, o.distributor_id, s.sku_id;
INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, {column_list()})
SELECT s.day, s.distributor_id, k.brand, {sums("s.")}
FROM sales_distributor_sku_daily s
LEFT JOIN skus k ON k.sku_id = s.sku_id
GROUP BY s.day, s.distributor_id, k.brand;
INSERT INTO sales_distributor_daily (day, distributor_id, {column_list()})
SELECT day, distributor_id, {sums()} FROM sales_distributor_brand_daily GROUP BY day, distributor_id;
{bulk_outlet_months()}"""  # noqa: S608 (names from figures.measures, fixed at import)
_DROP_STAGING = """
DROP TABLE sales_bulk_orders, sales_bulk_order_lines, sales_bulk_cancellations, sales_bulk_deliveries,
           sales_bulk_delivery_lines, sales_bulk_returns, sales_bulk_return_lines, sales_bulk_indexes;
"""
_ANALYZE = """
-- The tables line-level reads plan over (autovacuum analyzes the others after so many inserts anyway).
ANALYZE sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id), sales_orders;
"""


def _columns(names: str) -> list[str]:
    return [name.strip() for name in names.split(",")]


class SalesBulkLoader:
    """base.BulkLoader of the sales projection. `zone`: the business day's time zone; None reads the service's
    settings (QueryApiSettings.business_timezone) at `start`, as the live consumer does."""

    def __init__(self, zone: ZoneInfo | None = None) -> None:
        self._zone = zone

    async def start(self, conn: asyncpg.Connection) -> None:
        if self._zone is None:
            from query_api.settings import QueryApiSettings

            self._zone = QueryApiSettings().zone
        async with conn.transaction():
            await conn.execute(_START)
            await conn.execute(_RECORD_INDEXES, list(_SECONDARY_OF), list(_KEYS_OF))
            await conn.execute(_DROP_INDEXES)

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        if self._zone is None:
            raise RuntimeError("SalesBulkLoader.load before start")
        facts, fed = collect_sales(events, self._zone)
        copies: list[tuple[str, list[tuple[Any, ...]], str]] = [
            ("sales_bulk_orders", facts.orders, _ORDER_COLUMNS),
            (
                "sales_bulk_order_lines",
                facts.order_skus,
                "distributor_id, order_id, event_id, sku_id, units, value, lines",
            ),
            ("sales_bulk_cancellations", facts.cancellations, _CANCELLATION_COLUMNS),
            ("sales_bulk_deliveries", facts.deliveries, _DELIVERY_COLUMNS),
            (
                "sales_bulk_delivery_lines",
                facts.delivery_lines,
                "distributor_id, delivery_id, event_id, sku_id, units",
            ),
            ("sales_bulk_returns", facts.returns, _RETURN_COLUMNS),
            (
                "sales_bulk_return_lines",
                facts.return_lines,
                "distributor_id, return_id, event_id, sku_id, units",
            ),
        ]
        async with conn.transaction():
            for table, records, columns in copies:
                if records:
                    await conn.copy_records_to_table(table, records=records, columns=_columns(columns))
            if (newest := newest_times("sales_daily", fed)) is not None:
                await record_freshness(conn, [newest])

    async def finish(self, conn: asyncpg.Connection) -> None:
        steps = {
            "partitions": _PARTITIONS,
            "facts": _FACTS,
            "lines": _LINES,
            "drop_keys": _DROP_KEYS,
            "rollups": _ROLLUPS,
            "outlet_running": bulk_outlet_running(),
            "indexes": _CREATE_INDEXES,
            "drop_staging": _DROP_STAGING,
            "analyze": _ANALYZE,
        }
        seconds: dict[str, float] = {}
        async with conn.transaction():
            await conn.execute(_MEMORY)
            for step, statements in steps.items():
                started = time.perf_counter()
                await conn.execute(statements)
                seconds[step] = round(time.perf_counter() - started, 3)
        # Where a rebuild's finish goes, step by step: what to look at when it is slow.
        log.info("sales bulk load finished", extra={"seconds": seconds})
