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

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.figures.measures import RETURN_REASONS, column_list, sums
from query_api.projections.base import Connect
from query_api.projections.freshness import NewestTimes, newest_times, record_freshness
from query_api.projections.sales_brand_running import TABLES as BRAND_RUNNING_TABLES
from query_api.projections.sales_brand_running import bulk_outlet_brand_running
from query_api.projections.sales_facts import SalesFacts, collect_sales
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
    "sales_distributor_sku_daily",
    "sales_distributor_brand_daily",
    "sales_distributor_daily",
)
"""The tables whose secondary indexes are built after the load (primary keys of the facts stay: they are what
dedupes). The rollups are among them: inserting their rows into indexed tables cost about as much as grouping them
(measured: 2.7 s of 5.1 s for the SKU rollup of 200k lines)."""
_KEYS_OF = (
    *RUNNING_TABLES,
    *BRAND_RUNNING_TABLES,
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
    name text PRIMARY KEY, relation text NOT NULL, definition text NOT NULL, drop_statement text NOT NULL,
    at_finish boolean NOT NULL
);
-- The finish steps done, each recorded in its own transaction (logged: it must survive whatever its step wrote).
CREATE TABLE IF NOT EXISTS sales_bulk_steps (step text PRIMARY KEY);
CREATE UNLOGGED TABLE IF NOT EXISTS sales_bulk_orders (seq bigserial, LIKE sales_orders)
WITH (autovacuum_enabled = false);
CREATE INDEX IF NOT EXISTS sales_bulk_orders_by_id ON sales_bulk_orders (distributor_id, order_id);
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
INSERT INTO sales_bulk_indexes (name, relation, definition, drop_statement, at_finish)
SELECT c.relname, t.relname, replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON '),
       format('DROP INDEX IF EXISTS %I', c.relname), false
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
WHERE i.indrelid = ANY($1::text[]::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
UNION ALL
SELECT k.conname, t.relname,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid)),
       format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', k.conrelid::regclass, k.conname), true
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
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


def _create_indexes(*tables: str) -> str:
    """Builds the recorded indexes and keys of `tables` (names fixed in this module)."""
    names = ", ".join(f"'{table}'" for table in tables)
    return f"""
DO $$
DECLARE
    recorded record;
BEGIN
    FOR recorded IN SELECT definition FROM sales_bulk_indexes WHERE relation IN ({names}) ORDER BY name LOOP
        EXECUTE recorded.definition;
    END LOOP;
END
$$;
"""  # noqa: S608 (table names fixed in this module)


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
-- An order's lines are copied straight into sales_lines by `load` (once its event is known to win); the staged ones
-- are those of a load begun by an earlier version (none otherwise).
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
    -- The winning event's lines: the only 'order' rows there are (`load` copies no other).
    SELECT t.distributor_id, t.order_id, l.sku_id, l.units, l.value, l.lines
    FROM touched t
    JOIN sales_lines l ON l.distributor_id = t.distributor_id AND l.document_id = t.order_id AND l.kind = 'order'
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
#
# The text keys are sorted in the C collation (byte order), not the database's: under a libc collation (C.UTF-8,
# en_US...) PostgreSQL compares each pair with strcoll and cannot use abbreviated keys, which made the comparisons
# most of a rollup's sort. Libc collations are deterministic (equal only when the bytes are), so the groups are the
# same; only the order the rows are written in changes, which no read relies on (the tables' indexes are built
# after). Backend CPU on 200k lines, 4 interleaved pairs: outlet days 0.46 -> 0.36 s, SKU days 0.67 -> 0.62 s.
_SORTED = "SET LOCAL enable_hashagg = off;\n"
_OUTLET_DAILY = f"""
INSERT INTO sales_outlet_daily (outlet_id, day, {column_list()})
SELECT outlet_id COLLATE "C", day, {sums()} FROM sales_lines GROUP BY outlet_id COLLATE "C", day;
"""  # noqa: S608 (names from figures.measures, fixed at import)
_SKU_DAILY = f"""
INSERT INTO sales_distributor_sku_daily (day, distributor_id, sku_id, {column_list()})
SELECT s.day, o.distributor_id COLLATE "C", s.sku_id COLLATE "C", {sums("s.")}
FROM sales_lines s
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
GROUP BY s.day, o.distributor_id COLLATE "C", s.sku_id COLLATE "C";
"""  # noqa: S608 (names from figures.measures, fixed at import)
_BRAND_DAILY = f"""
INSERT INTO sales_distributor_brand_daily (day, distributor_id, brand, {column_list()})
SELECT s.day, s.distributor_id COLLATE "C", k.brand COLLATE "C", {sums("s.")}
FROM sales_distributor_sku_daily s
LEFT JOIN skus k ON k.sku_id = s.sku_id
GROUP BY s.day, s.distributor_id COLLATE "C", k.brand COLLATE "C";
"""  # noqa: S608 (names from figures.measures, fixed at import)
_DISTRIBUTOR_DAILY = f"""
INSERT INTO sales_distributor_daily (day, distributor_id, {column_list()})
SELECT day, distributor_id COLLATE "C", {sums()}
FROM sales_distributor_brand_daily
GROUP BY day, distributor_id COLLATE "C";
"""  # noqa: S608 (names from figures.measures, fixed at import)
# The steps table goes with the staging, in the same transaction: a finished load leaves nothing of its own.
_DROP_STAGING = """
DROP TABLE sales_bulk_orders, sales_bulk_order_lines, sales_bulk_cancellations, sales_bulk_deliveries,
           sales_bulk_delivery_lines, sales_bulk_returns, sales_bulk_return_lines, sales_bulk_indexes,
           sales_bulk_steps;
"""
# The tables line-level reads plan over (autovacuum analyzes the others after so many inserts anyway).
_ANALYZE_LINES = "ANALYZE sales_lines (day, distributor_id, document_id, kind, outlet_id, sku_id, rep_id);"
_ANALYZE_ORDERS = "ANALYZE sales_orders;"
_HAS_STEPS = "SELECT to_regclass('sales_bulk_steps') IS NOT NULL"
_ANY_STEP = "SELECT EXISTS (SELECT 1 FROM sales_bulk_steps)"
_DONE = "SELECT EXISTS (SELECT 1 FROM sales_bulk_steps WHERE step = $1)"
_MARK_DONE = "INSERT INTO sales_bulk_steps (step) VALUES ($1)"

Step = tuple[str, str]
"""A finish step: its name, and its statements (one transaction)."""

# A reference change read while orders load (not in a rebuild, which reads the reference topic first; possible
# for the loader) moves rollup rows by the lines it finds in sales_lines, which `load` now fills: what it left in
# the rollups it moves is dropped, since they are regrouped from every line, under the final masters, below.
_CLEAR_MOVED = """
DELETE FROM sales_distributor_sku_daily;
DELETE FROM sales_distributor_brand_daily;
DELETE FROM sales_distributor_daily;
"""
_FIRST: list[Step] = [("lines", _PARTITIONS + ";" + _FACTS + _LINES + ";" + _DROP_KEYS + ";" + _CLEAR_MOVED)]
"""The facts and the line table, from the staging: what every later step reads."""
_BRANCHES: list[list[Step]] = [
    # The SKU -> brand -> distributor chain (each regroups the one before): the heaviest rollups.
    [
        ("sku_daily", _SORTED + _SKU_DAILY + _create_indexes("sales_distributor_sku_daily")),
        ("brand_daily", _SORTED + _BRAND_DAILY + _create_indexes("sales_distributor_brand_daily")),
        ("distributor_daily", _SORTED + _DISTRIBUTOR_DAILY + _create_indexes("sales_distributor_daily")),
    ],
    # The line table's indexes and statistics: they only read sales_lines, as the rollups do (CREATE INDEX's
    # SHARE lock lets the other branches' reads through).
    [
        ("line_indexes", _create_indexes("sales_lines")),
        ("analyze_lines", _ANALYZE_LINES),
        # Running totals per (brand, outlet) (migration 0028) are derived from the lines and the SKUs' brands.
        ("outlet_brand_running", bulk_outlet_brand_running() + _create_indexes(*BRAND_RUNNING_TABLES)),
    ],
    # The outlet rollups (the running totals after the outlet days they sum), then the facts' own indexes.
    [
        ("outlet_daily", _SORTED + _OUTLET_DAILY + _create_indexes("sales_outlet_daily")),
        # Running totals per outlet (migration 0027) are derived from the outlet days just grouped.
        ("outlet_running", bulk_outlet_running() + _create_indexes(*RUNNING_TABLES)),
        (
            "fact_indexes",
            _create_indexes("sales_orders", "sales_deliveries", "sales_returns", "sales_return_lines")
            + _ANALYZE_ORDERS,
        ),
    ],
]
"""Independent of each other once the first step is done: each on its own connection when `finish_parallel` has
more, so the two cores each run one (measured on one backend: rollups 1.5 s, index builds 0.8 s, ANALYZE 0.6 s
of CPU for 200k lines, while the rebuild's Python waited)."""
_LAST: list[Step] = [("drop_staging", _DROP_STAGING)]


_STAGED_ORDERS = """
SELECT o.distributor_id, o.order_id
FROM sales_bulk_orders o
JOIN unnest($1::text[], $2::text[]) AS b (distributor_id, order_id)
  ON o.distributor_id = b.distributor_id AND o.order_id = b.order_id
"""
_MONTHS = "SELECT count(sales_lines_month(m)) FROM unnest($1::date[]) AS m"
_LINE_FIELDS = [
    "day", "distributor_id", "document_id", "kind", "outlet_id", "sku_id", "rep_id", "value", "units", "lines",
    "ordered_value", "ordered_units",
]  # fmt: skip


def _columns(names: str) -> list[str]:
    return [name.strip() for name in names.split(",")]


_ORDER_FIELDS = _columns(_ORDER_COLUMNS)
_CANCELLATION_FIELDS = _columns(_CANCELLATION_COLUMNS)
_DELIVERY_FIELDS = _columns(_DELIVERY_COLUMNS)
_DELIVERY_LINE_FIELDS = ["distributor_id", "delivery_id", "event_id", "sku_id", "units"]
_RETURN_FIELDS = _columns(_RETURN_COLUMNS)
_RETURN_LINE_FIELDS = ["distributor_id", "return_id", "event_id", "sku_id", "units"]


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
            if await conn.fetchval(_HAS_STEPS) and await conn.fetchval(_ANY_STEP):
                return  # `finish` began (and rebuilt some indexes): a resumed rebuild must not drop them again
            await conn.execute(_START)
            await conn.execute(_RECORD_INDEXES, list(_SECONDARY_OF), list(_KEYS_OF))
            await conn.execute(_DROP_INDEXES)

    def prepare_load(self, events: Sequence[Any]) -> "SalesBatch":
        """What `load_prepared` writes for these events, without the database (base.PreparingBulkLoader: a rebuild
        runs it in its decoding thread, while the previous batch is written): the facts as rows, and the order lines
        as sales_lines rows for the first event of each order id in the batch."""
        if self._zone is None:
            raise RuntimeError("SalesBulkLoader.load before start")
        facts, fed = collect_sales(events, self._zone)
        heads: dict[Any, tuple[Any, ...]] = {}
        firsts: set[tuple[str, str]] = set()
        for row in facts.orders:
            if (row[0], row[1]) not in firsts:  # a later event of the same order in this batch loses
                firsts.add((row[0], row[1]))
                heads[row[2]] = row
        lines: list[tuple[Any, ...]] = []
        for d, o, event_id, sku, units, value, count in facts.order_skus:
            head = heads.get(event_id)
            if head is not None:
                lines.append((head[5], d, o, "order", head[3], sku, head[4], value, units, count, value, units))
        months = sorted({row[5].replace(day=1) for row in heads.values()})
        return SalesBatch(facts, lines, months, newest_times("sales_daily", fed))

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        await self.load_prepared(conn, self.prepare_load(events))

    async def load_prepared(self, conn: asyncpg.Connection, batch: "SalesBatch") -> None:
        facts = batch.facts
        copies: list[tuple[str, list[tuple[Any, ...]], list[str]]] = [
            ("sales_bulk_cancellations", facts.cancellations, _CANCELLATION_FIELDS),
            ("sales_bulk_deliveries", facts.deliveries, _DELIVERY_FIELDS),
            ("sales_bulk_delivery_lines", facts.delivery_lines, _DELIVERY_LINE_FIELDS),
            ("sales_bulk_returns", facts.returns, _RETURN_FIELDS),
            ("sales_bulk_return_lines", facts.return_lines, _RETURN_LINE_FIELDS),
        ]
        async with conn.transaction():
            if facts.orders:
                lines = await _winning_lines(conn, batch)
                await conn.copy_records_to_table("sales_bulk_orders", records=facts.orders, columns=_ORDER_FIELDS)
                if lines:
                    await conn.copy_records_to_table("sales_lines", records=lines, columns=_LINE_FIELDS)
            for table, records, columns in copies:
                if records:
                    await conn.copy_records_to_table(table, records=records, columns=columns)
            if batch.newest is not None:
                await record_freshness(conn, [batch.newest])

    async def finish(self, conn: asyncpg.Connection) -> None:
        """All the steps on this one connection, one after another (inside the caller's transaction, if any)."""
        seconds: dict[str, float] = {}
        for step in [*_FIRST, *(step for branch in _BRANCHES for step in branch), *_LAST]:
            await _run_step(conn, step, seconds)
        log.info("sales bulk load finished", extra={"seconds": seconds})

    async def finish_parallel(self, conn: asyncpg.Connection, connect: Connect) -> None:
        """The first step on `conn`, then each branch on a connection of its own, then the last step."""
        seconds: dict[str, float] = {}
        for step in _FIRST:
            await _run_step(conn, step, seconds)

        async def branch(steps: list[Step], own: asyncpg.Connection | None = None) -> None:
            if own is not None:
                for step in steps:
                    await _run_step(own, step, seconds)
                return
            async with connect() as other:
                await branch(steps, other)

        # One branch stays on `conn` (it is idle otherwise); the others get connections of their own. All are waited
        # for before a failure is raised: none is left running on a connection its caller is about to close.
        outcomes = await asyncio.gather(
            branch(_BRANCHES[0], conn), *(branch(steps) for steps in _BRANCHES[1:]), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for step in _LAST:
            await _run_step(conn, step, seconds)
        # Where a rebuild's finish goes, step by step (branches overlap): what to look at when it is slow.
        log.info("sales bulk load finished", extra={"seconds": seconds})


@dataclass(frozen=True)
class SalesBatch:
    """A batch as SalesBulkLoader.prepare_load leaves it for `load_prepared`."""

    facts: SalesFacts
    lines: list[tuple[Any, ...]]
    """sales_lines rows of the first event of each order id in the batch (columns _LINE_FIELDS)."""
    months: list[date]
    """The months those rows fall in."""
    newest: NewestTimes | None


async def _winning_lines(conn: asyncpg.Connection, batch: SalesBatch) -> list[tuple[Any, ...]]:
    """The batch's order lines whose event wins: the first of its order id in the log, as ON CONFLICT DO NOTHING
    has it live (an order sent again under a new event id is staged, and loses at `finish`, but its lines are never
    written). `prepare_load` kept the first of each order id in the batch; those staged by earlier batches win over
    them. The month partitions the rows fall in are created first, as the live path does (each batch asks again: a
    rolled-back batch takes its partitions with it)."""
    orders = batch.facts.orders
    staged = {
        (r["distributor_id"], r["order_id"])
        for r in await conn.fetch(_STAGED_ORDERS, [row[0] for row in orders], [row[1] for row in orders])
    }
    if batch.months:
        await conn.execute(_MONTHS, batch.months)
    if not staged:
        return batch.lines
    return [line for line in batch.lines if (line[1], line[2]) not in staged]


async def _run_step(conn: asyncpg.Connection, step: Step, seconds: dict[str, float]) -> None:
    """One step in its own transaction (a savepoint inside the caller's), recorded as done in the same one;
    skipped if it was done before (a rebuild resumed after a crash between steps)."""
    name, statements = step
    started = time.perf_counter()
    async with conn.transaction():
        if await conn.fetchval(_DONE, name):
            return
        await conn.execute(_MEMORY)
        await conn.execute(statements)
        if name != "drop_staging":  # which dropped the steps table: nothing left to record in
            await conn.execute(_MARK_DONE, name)
    seconds[name] = round(time.perf_counter() - started, 3)
