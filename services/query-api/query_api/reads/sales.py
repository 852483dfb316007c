"""Drill-down over the daily sales projection: national -> zone -> region -> distributor -> outlet.

Fixed SQL statements (no SQL is assembled from input) give the same rows from different tables: the order-line
fact table sales_lines for SKU filters, and its rollups per (day, distributor [, brand]), per (outlet, day) and per
(outlet, month) otherwise, so a 90-day national total reads thousands of rows, not millions. Sales whose outlet (or its
distributor, region, zone) is not yet known from reference data are grouped under a null id rather than
dropped, so the rows always add up to the national total.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

import asyncpg

from query_api.figures.measures import MEASURES, NAMES, column_list, sums

_TOTALS = ", ".join(f"sum(sum({name})) OVER () AS total_{name}" for name in NAMES)


class Level(StrEnum):
    NATIONAL = "national"
    ZONE = "zone"
    REGION = "region"
    DISTRIBUTOR = "distributor"
    OUTLET = "outlet"


PARENT_LEVEL: dict[Level, Level] = {
    Level.ZONE: Level.NATIONAL,
    Level.REGION: Level.ZONE,
    Level.DISTRIBUTOR: Level.REGION,
    Level.OUTLET: Level.DISTRIBUTOR,
}

# Each statement builds `placed` rows (node_id, node_name[, parent_id], measures) and groups them into nodes the same
# way: ranked by value, the page asked for, with the totals and the number of nodes over all of them (window
# functions over the groups, so one statement). Those whose `placed` may hold other parents' nodes keep the parent's.
_NODES = f"""
SELECT node_id, max(node_name) AS name, {sums()}, {_TOTALS}, count(*) OVER () AS row_count
FROM placed
GROUP BY node_id
ORDER BY sum(value) DESC, node_id NULLS LAST
LIMIT $7
"""  # noqa: S608 (names from figures.measures, fixed at import)
_NODES_UNDER_PARENT = f"""
SELECT node_id, max(node_name) AS name, {sums()}, {_TOTALS}, count(*) OVER () AS row_count
FROM placed
WHERE $4::text IS NULL OR parent_id = $4
GROUP BY node_id
ORDER BY sum(value) DESC, node_id NULLS LAST
LIMIT $7
"""  # noqa: S608 (names from figures.measures, fixed at import)


def line_drill_sql(narrowing: str = "") -> str:
    """The drill-down from the order-line fact table itself (migration 0015): any level and filter; the other
    statements read rollups of it. `narrowing`: further `AND` conditions on the line and its outlet (`s`, `o`), with
    parameters after $8 (reads/sales_segments.py: the outlet's channel and class)."""
    return f"""
WITH filtered AS (
    SELECT {column_list("s.")},
           s.outlet_id, o.name AS outlet_name,
           o.distributor_id, d.name AS distributor_name,
           d.region_id, r.name AS region_name,
           r.zone_id, z.name AS zone_name
    FROM sales_lines s
    LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
    LEFT JOIN distributors d ON d.distributor_id = o.distributor_id
    LEFT JOIN regions r ON r.region_id = d.region_id
    LEFT JOIN zones z ON z.zone_id = r.zone_id
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $2 AND $3
      AND ($5::text IS NULL OR k.brand = $5)
      AND ($6::text IS NULL OR s.sku_id = $6)
      AND ($8::text[] IS NULL OR o.distributor_id = ANY($8)){narrowing}
), placed AS (
    SELECT CASE $1 WHEN 'national' THEN 'national' WHEN 'zone' THEN zone_id WHEN 'region' THEN region_id
                   WHEN 'distributor' THEN distributor_id ELSE outlet_id END AS node_id,
           CASE $1 WHEN 'national' THEN 'National' WHEN 'zone' THEN zone_name WHEN 'region' THEN region_name
                   WHEN 'distributor' THEN distributor_name ELSE outlet_name END AS node_name,
           CASE $1 WHEN 'region' THEN zone_id WHEN 'distributor' THEN region_id
                   WHEN 'outlet' THEN distributor_id END AS parent_id,
           {column_list()}
    FROM filtered
)
{_NODES_UNDER_PARENT}"""  # noqa: S608 (names from figures.measures, fixed at import)


_DRILL_SQL = line_drill_sql()

# Levels national to distributor: a row per distributor a day (per brand with a brand filter, per SKU with a SKU
# filter), not every line.
_DRILL_BY_DISTRIBUTOR_SQL = f"""
WITH by_distributor AS (
    -- Summed per distributor before the geography is joined. Planned for its parameters, only one branch runs.
    SELECT distributor_id, {sums()}
    FROM sales_distributor_daily_now
    WHERE day BETWEEN $2 AND $3 AND $5::text IS NULL AND $6::text IS NULL
      AND ($8::text[] IS NULL OR distributor_id = ANY($8))
    GROUP BY distributor_id
    UNION ALL
    SELECT distributor_id, {sums()}
    FROM sales_distributor_brand_daily_now
    WHERE brand = $5 AND day BETWEEN $2 AND $3 AND $6::text IS NULL
      AND ($8::text[] IS NULL OR distributor_id = ANY($8))
    GROUP BY distributor_id
    UNION ALL
    -- A SKU (and a brand with it: nothing unless it is the SKU's brand now, as the lines' statement has it).
    SELECT distributor_id, {sums()}
    FROM sales_distributor_sku_daily_now
    WHERE sku_id = $6 AND day BETWEEN $2 AND $3
      AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM skus k WHERE k.sku_id = $6 AND k.brand = $5))
      AND ($8::text[] IS NULL OR distributor_id = ANY($8))
    GROUP BY distributor_id
), placed AS (
    SELECT CASE $1 WHEN 'national' THEN 'national' WHEN 'zone' THEN r.zone_id WHEN 'region' THEN d.region_id
                   ELSE t.distributor_id END AS node_id,
           CASE $1 WHEN 'national' THEN 'National' WHEN 'zone' THEN z.name WHEN 'region' THEN r.name
                   ELSE d.name END AS node_name,
           CASE $1 WHEN 'region' THEN r.zone_id WHEN 'distributor' THEN d.region_id END AS parent_id,
           {column_list("t.")}
    FROM by_distributor t
    LEFT JOIN distributors d ON d.distributor_id = t.distributor_id
    LEFT JOIN regions r ON r.region_id = d.region_id
    LEFT JOIN zones z ON z.zone_id = r.zone_id
)
{_NODES_UNDER_PARENT}"""  # noqa: S608 (names from figures.measures, fixed at import)

# Outlet level across all distributors without a brand or SKU filter, from the outlets' running totals (migration
# 0027, projections/sales_running.py): per outlet, its figures as of the range's last day minus those as of the
# day before its first, each the rows `day = X` of sales_outlet_running (one index range) or, past an outlet's last
# day with sales, its sales_outlet_totals row; none before its first. Two rows an outlet for any range (~33 with
# months and edge days), joined rather than aggregated: the ranking's cost was the aggregation (78 ms of CPU per
# request at 2M lines, most of it grouping 5,000 outlets' 13 sums twice, not reading rows). An outlet is listed
# when the range holds days with its sales (the difference of `days`) or queued lines, added per outlet as the
# `*_now` views add them: those of sales_lines_unfolded and those the fold queued for the running totals
# (sales_outlet_running_unfolded, migration 0030).
_AS_OF = f"""
    SELECT outlet_id, days AS listed, {column_list()} FROM sales_outlet_running WHERE day = {{day}}
    UNION ALL
    SELECT outlet_id, days, {column_list()} FROM sales_outlet_totals WHERE day < {{day}}
"""  # noqa: S608 (names from figures.measures, fixed at import)
_PLAIN_TOTALS = ", ".join(f"sum({name}) OVER () AS total_{name}" for name in NAMES)
# `placed` rows that are already one an outlet: ranked and totalled as _NODES does, without grouping again.
_PLACED_NODES = f"""
SELECT node_id, name, {column_list()}, {_PLAIN_TOTALS}, count(*) OVER () AS row_count
FROM placed
ORDER BY value DESC, node_id NULLS LAST
LIMIT $7"""  # noqa: S608 (names from figures.measures, fixed at import)
# Running-total statements rank thousands of outlets (5,000 in the bench) and return a page: the figures of every
# outlet (13 sums of differences, most of them numeric) and a window summing them for the total row cost ~2/3 of the
# statement (at 2M lines: 45 of 60 ms), where listing and ranking the outlets by value costs ~5 ms. So the outlets are
# ranked on their value alone, with their running rows' columns carried along as they are, the page's figures are
# worked out for the page only, and the total row is the range's sum in a distributor rollup (`rollup_totals`): the
# same lines (an outlet not listed has no figures in the range; the rollups follow an outlet's distributor and a
# SKU's brand as the outlet dimension and the running totals do, tests/integration/test_sales_rollups.py).
_CARRIED = ", ".join(f"d.hi_{name}, d.lo_{name}, q.{name} AS q_{name}" for name in NAMES)
_HI_LO = ", ".join(f"hi.{name} AS hi_{name}, lo.{name} AS lo_{name}" for name in NAMES)
_PAGE_FIGURES = ", ".join(
    f"coalesce(c.hi_{name} - coalesce(c.lo_{name}, 0), 0) + coalesce(c.q_{name}, 0) AS {name}" for name in NAMES
)
_RANK_VALUE = "coalesce(d.hi_value - coalesce(d.lo_value, 0), 0) + coalesce(q.value, 0)"
_TOTAL_OF = ", ".join(f"coalesce(sum({name}), 0) AS total_{name}" for name in NAMES)


def _ranked_page(condition: str, rollup_totals: str) -> str:
    """The page of a running-total statement whose CTEs `hi`, `lo` (an outlet's figures as of the range's last day
    and the day before its first, `rows` or `days` counting what makes it listed in the range as `listed`) and
    `queued` are defined: outlets listed, `condition` on the outlet `o` and the statement's parameters, ranked by
    value; `rollup_totals`: the total row's statement over a distributor rollup."""
    return f"""
, d AS (
    SELECT hi.outlet_id, {_HI_LO}
    FROM hi LEFT JOIN lo ON lo.outlet_id = hi.outlet_id
    WHERE hi.listed - coalesce(lo.listed, 0) > 0
), candidates AS (
    SELECT coalesce(d.outlet_id, q.outlet_id) AS node_id, o.name, {_RANK_VALUE} AS rank_value,
           count(*) OVER () AS row_count, {_CARRIED}
    FROM d
    FULL JOIN queued q ON q.outlet_id = d.outlet_id
    LEFT JOIN outlets o ON o.outlet_id = coalesce(d.outlet_id, q.outlet_id)
    WHERE {condition}
), page AS (
    SELECT * FROM candidates ORDER BY rank_value DESC, node_id NULLS LAST LIMIT $7
)
SELECT c.node_id, c.name, {_PAGE_FIGURES}, t.*, c.row_count
FROM page c
CROSS JOIN ({rollup_totals}) AS t
ORDER BY c.rank_value DESC, c.node_id NULLS LAST"""  # noqa: S608 (names from figures.measures, fixed at import)


_OUTLET_RUNNING_CTES = f"""
WITH hi AS ({_AS_OF.format(day="$3::date")}), lo AS ({_AS_OF.format(day="($2::date - 1)")}), queued AS (
    SELECT outlet_id, {sums()}
    FROM (SELECT outlet_id, {column_list()} FROM sales_lines_unfolded WHERE day BETWEEN $2 AND $3
          UNION ALL
          SELECT outlet_id, {column_list()} FROM sales_outlet_running_unfolded WHERE day BETWEEN $2 AND $3) AS q
    GROUP BY outlet_id
)"""  # noqa: S608 (names from figures.measures, fixed at import)
_OUTLET_TOTALS = f"""SELECT {_TOTAL_OF} FROM sales_distributor_daily_now
    WHERE day BETWEEN $2 AND $3 AND ($8::text[] IS NULL OR distributor_id = ANY($8))"""  # noqa: S608 (names fixed)
_DRILL_BY_OUTLET_RUNNING_SQL = _OUTLET_RUNNING_CTES + _ranked_page(
    "($8::text[] IS NULL OR o.distributor_id = ANY($8))"
    " AND $1::text = 'outlet' AND $4::text IS NULL AND $5::text IS NULL AND $6::text IS NULL",
    _OUTLET_TOTALS,
)

# The SKUs a brand or SKU filter asks for: the SKU ($6, if of the brand $5 when both are given), else the brand's
# SKUs as reference data has them now.
_WANTED_SKUS = """wanted AS (
    SELECT CASE
        WHEN $6::text IS NULL THEN (SELECT coalesce(array_agg(k.sku_id), '{}') FROM skus k WHERE k.brand = $5)
        WHEN $5::text IS NULL OR EXISTS (SELECT 1 FROM skus k WHERE k.sku_id = $6 AND k.brand = $5) THEN ARRAY[$6]
        ELSE '{}'::text[] END AS skus
)"""

# Outlet level across all distributors with a brand or SKU filter: the lines of the SKUs asked for (as
# _DRILL_OUTLET_LINES_OF_DISTRIBUTOR_SQL picks them) summed per outlet first, then the outlets joined once each,
# rather than every line joined to its outlet, distributor, region, zone and SKU and placed (line_drill_sql).
_DRILL_OUTLET_LINES_SQL = f"""
WITH {_WANTED_SKUS}, by_outlet AS (
    SELECT s.outlet_id, {sums("s.")}
    FROM sales_lines s
    WHERE s.sku_id = ANY((SELECT skus FROM wanted)::text[]) AND s.day BETWEEN $2 AND $3
      AND $1::text = 'outlet' AND $4::text IS NULL
    GROUP BY s.outlet_id
), placed AS (
    SELECT t.outlet_id AS node_id, o.name, {column_list("t.")}
    FROM by_outlet t
    LEFT JOIN outlets o ON o.outlet_id = t.outlet_id
    WHERE $8::text[] IS NULL OR o.distributor_id = ANY($8)
)
{_PLACED_NODES}"""  # noqa: S608 (names from figures.measures, fixed at import)

# Outlet level with a brand filter (no SKU), across distributors or under one: from the running totals per (brand,
# outlet) (migration 0028, projections/sales_brand_running.py), as the statement above reads the outlets': per outlet,
# the brand's figures as of the range's last day minus those as of the day before its first, plus its queued lines
# of the brand's SKUs, both those of sales_lines_unfolded and those the fold queued for the running totals
# (sales_outlet_running_unfolded, keyed by brand too since migration 0032). As of day X a pair's figures are its
# totals row when X is on or after its last day with lines, nothing before its first, else its last running row on
# or before X (one backward descent of the key): a range ending today reads one totals row a pair and no running row.
# Reading the range's lines of the brand instead cost 683 ms at 10M lines across 5,000 outlets (a tenth of the lines
# summed per outlet).
_OF_PARENT = "($4::text IS NULL OR t.outlet_id IN (SELECT p.outlet_id FROM outlets p WHERE p.distributor_id = $4))"
_BRAND_AS_OF = f"""
    SELECT t.outlet_id, t.rows AS listed, {column_list("t.")}
    FROM sales_outlet_brand_totals t
    WHERE t.brand = $5 AND t.day <= {{day}} AND {_OF_PARENT}
    UNION ALL
    SELECT t.outlet_id, r.rows, {column_list("r.")}
    FROM sales_outlet_brand_totals t
    CROSS JOIN LATERAL (
        SELECT * FROM sales_outlet_brand_running r
        WHERE r.brand = t.brand AND r.outlet_id = t.outlet_id AND r.day <= {{day}}
        ORDER BY r.day DESC
        LIMIT 1
    ) AS r
    WHERE t.brand = $5 AND t.first_day <= {{day}} AND t.day > {{day}} AND {_OF_PARENT}
"""  # noqa: S608 (names from figures.measures, fixed at import)
_BRAND_RUNNING_CTES = f"""
WITH hi AS ({_BRAND_AS_OF.format(day="$3::date")}), lo AS ({_BRAND_AS_OF.format(day="($2::date - 1)")}), queued AS (
    SELECT q.outlet_id, {sums("q.")}
    FROM (SELECT q.outlet_id, {column_list("q.")}
          FROM sales_lines_unfolded q
          JOIN skus k ON k.sku_id = q.sku_id
          WHERE k.brand = $5 AND q.day BETWEEN $2 AND $3
          UNION ALL
          SELECT outlet_id, {column_list()} FROM sales_outlet_running_unfolded
          WHERE brand = $5 AND day BETWEEN $2 AND $3) AS q
    GROUP BY q.outlet_id
)"""  # noqa: S608 (names from figures.measures, fixed at import)
_BRAND_TOTALS = f"""SELECT {_TOTAL_OF} FROM sales_distributor_brand_daily_now
    WHERE brand = $5 AND day BETWEEN $2 AND $3 AND ($4::text IS NULL OR distributor_id = $4)
      AND ($8::text[] IS NULL OR distributor_id = ANY($8))"""  # noqa: S608 (names from figures.measures)
_DRILL_OUTLET_BRAND_RUNNING_SQL = _BRAND_RUNNING_CTES + _ranked_page(
    "($4::text IS NULL OR o.distributor_id = $4) AND ($8::text[] IS NULL OR o.distributor_id = ANY($8))"
    " AND $1::text = 'outlet' AND $5::text IS NOT NULL AND $6::text IS NULL",
    _BRAND_TOTALS,
)

# The outlets of one distributor: from its outlets into each one's days, an index range per outlet (~125 of them),
# rather than the whole date range of sales_outlet_daily hash-joined to them, the plan Postgres picks for a join of
# the two filtered on the distributor (44 ms against 4 ms over 5,000 outlets x 90 days).
_DRILL_OUTLETS_OF_DISTRIBUTOR_SQL = f"""
WITH placed AS (
    SELECT o.outlet_id AS node_id, o.name AS node_name, {column_list("s.")}
    FROM outlets o
    CROSS JOIN LATERAL (
        SELECT {sums("t.")}, count(*) AS days
        FROM sales_outlet_daily_now t
        WHERE t.outlet_id = o.outlet_id AND t.day BETWEEN $2 AND $3
    ) s
    WHERE o.distributor_id = $4 AND s.days > 0
      AND $1::text = 'outlet' AND $5::text IS NULL AND $6::text IS NULL
      AND ($8::text[] IS NULL OR o.distributor_id = ANY($8))
)
{_NODES}"""  # noqa: S608 (names from figures.measures, fixed at import)


# Outlet level with a brand or SKU filter, for one distributor's outlets: the SKUs asked for (the SKU; the brand's
# SKUs as reference data has them now, which is what the lines' statement joins), then from each outlet into its
# lines of those SKUs: an index-only range of sales_lines_by_outlet_sku (migration 0017) per outlet and SKU, rather
# than every line of each outlet read from the heap to keep the few of the SKU (~20x fewer buffers at 1M lines).
_DRILL_OUTLET_LINES_OF_DISTRIBUTOR_SQL = f"""
WITH {_WANTED_SKUS}, placed AS (
    SELECT o.outlet_id AS node_id, o.name AS node_name, {column_list("s.")}
    FROM outlets o
    CROSS JOIN LATERAL (
        SELECT {sums("t.")}, count(*) AS found
        FROM sales_lines t
        WHERE t.outlet_id = o.outlet_id AND t.sku_id = ANY((SELECT skus FROM wanted)::text[])
          AND t.day BETWEEN $2 AND $3
    ) s
    WHERE o.distributor_id = $4 AND s.found > 0 AND $1::text = 'outlet'
      AND ($8::text[] IS NULL OR o.distributor_id = ANY($8))
)
{_NODES}"""  # noqa: S608 (names from figures.measures, fixed at import)


_PARENT_EXISTS_SQL = """
SELECT CASE $1
    WHEN 'zone' THEN EXISTS (SELECT 1 FROM zones WHERE zone_id = $2)
    WHEN 'region' THEN EXISTS (SELECT 1 FROM regions WHERE region_id = $2)
    WHEN 'distributor' THEN EXISTS (SELECT 1 FROM distributors WHERE distributor_id = $2)
    ELSE false END
"""


Figures = dict[str, Decimal | int]
"""A node's measures by name (figures.measures.NAMES): net value, units and lines, and what makes them up."""


@dataclass(frozen=True)
class DrillRow:
    id: str | None
    name: str | None
    figures: Figures

    @property
    def value(self) -> Decimal:
        return Decimal(self.figures["value"])

    @property
    def units(self) -> int:
        return int(self.figures["units"])

    @property
    def lines(self) -> int:
        return int(self.figures["lines"])


@dataclass(frozen=True)
class DrillResult:
    rows: list[DrillRow]
    total: Figures
    row_count: int


@dataclass(frozen=True)
class DrillQuery:
    level: Level
    parent_id: str | None
    date_from: date
    date_to: date
    brand: str | None = None
    sku_id: str | None = None
    limit: int = 500
    distributors: list[str] | None = None
    """The caller's scope (api/caller.py): only sales of these distributors' outlets; None: national."""


async def parent_exists(conn: asyncpg.Connection, level: Level, parent_id: str) -> bool:
    return bool(await conn.fetchval(_PARENT_EXISTS_SQL, PARENT_LEVEL[level].value, parent_id))


def drill_statement(query: DrillQuery) -> str:
    """The cheapest statement that answers the query; all give the same rows (tests/integration/test_sales_rollups)."""
    if query.level is not Level.OUTLET:
        return _DRILL_BY_DISTRIBUTOR_SQL
    if query.brand is not None and query.sku_id is None:
        return _DRILL_OUTLET_BRAND_RUNNING_SQL
    filtered = query.sku_id is not None or query.brand is not None
    if query.parent_id is not None:
        return _DRILL_OUTLET_LINES_OF_DISTRIBUTOR_SQL if filtered else _DRILL_OUTLETS_OF_DISTRIBUTOR_SQL
    return _DRILL_OUTLET_LINES_SQL if filtered else _DRILL_BY_OUTLET_RUNNING_SQL


async def drill(
    conn: asyncpg.Connection, query: DrillQuery, *, statement: str | None = None, more: tuple[object, ...] = ()
) -> DrillResult:
    """`statement`: one of this module's statements, to compare them; by default the cheapest that applies. `more`:
    the parameters after $8 of a statement made by line_drill_sql with a narrowing."""
    records = await conn.fetch(
        statement or drill_statement(query),
        query.level.value,
        query.date_from,
        query.date_to,
        query.parent_id,
        query.brand,
        query.sku_id,
        query.limit,
        query.distributors,
        *more,
    )
    rows = [DrillRow(r["node_id"], r["name"], _figures(r)) for r in records]
    if not records:
        return DrillResult(rows, _figures(None), 0)
    first = records[0]
    return DrillResult(rows, _figures(first, "total_"), int(first["row_count"]))


def _figures(record: asyncpg.Record | None, prefix: str = "") -> Figures:
    """Every measure of a row (zero when there is no row), money as Decimal and counts as int."""
    return {
        m.name: (Decimal if m.sql_type == "numeric" else int)(record[prefix + m.name] if record else 0)
        for m in MEASURES
    }
