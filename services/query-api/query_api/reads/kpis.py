"""Read queries over the KPI projections. Static SQL only; geography, brands and names joined at read time.

The drill-level KPI query returns one (node, measure, amount) row per measure, so each source table adds its
measures with a plain UNION ALL; rates, changes and shares are computed from the sums in figures/kpis.py.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import asyncpg

from query_api.reads.sales import Level

# $1 level, $2 parent_id, $3 from, $4 to, $5 previous period's first day (it ends the day before $3),
# $6 brand, $7 sku, $8 rep, $9 first day of the dormancy window (which ends at $4), $10 with primary sales,
# $11 the caller's distributors (api/caller.py; null: national), $12 channels and $13 outlet classes (null: all;
# primary sales belong to no outlet, so a channel or class leaves them out).
# Call measures (orders, visits) have no SKU, so brand and SKU filters do not apply to them; primary sales have
# no rep and are attributed to distributors, so they are left out at outlet level.
_KPI_SQL = """
WITH sales AS (
    SELECT s.outlet_id,
           sum(s.value) FILTER (WHERE s.day >= $3) AS value, sum(s.units) FILTER (WHERE s.day >= $3) AS units,
           sum(s.lines) FILTER (WHERE s.day >= $3) AS lines,
           sum(s.value) FILTER (WHERE s.day < $3) AS previous_value,
           sum(s.units) FILTER (WHERE s.day < $3) AS previous_units
    FROM sales_lines s
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $5 AND $4
      AND ($6::text IS NULL OR k.brand = $6) AND ($7::text IS NULL OR s.sku_id = $7)
      AND ($8::text IS NULL OR s.rep_id = $8)
    GROUP BY s.outlet_id
), primary_sales AS (
    SELECT p.distributor_id, sum(p.value) AS value, sum(p.units) AS units
    FROM primary_daily p
    LEFT JOIN skus k ON k.sku_id = p.sku_id
    WHERE p.day BETWEEN $3 AND $4 AND $1 <> 'outlet' AND $10::boolean
      AND ($6::text IS NULL OR k.brand = $6) AND ($7::text IS NULL OR p.sku_id = $7)
    GROUP BY p.distributor_id
), calls AS (
    SELECT outlet_id, sum(orders) AS orders, sum(lines) AS order_lines, sum(visits) AS visits,
           sum(productive) AS productive
    FROM (
        SELECT outlet_id, orders, lines, 0 AS visits, 0 AS productive FROM kpi_orders_daily
        WHERE day BETWEEN $3 AND $4 AND ($8::text IS NULL OR rep_id = $8)
        UNION ALL
        SELECT outlet_id, 0, 0, visits, productive FROM kpi_visits_daily
        WHERE day BETWEEN $3 AND $4 AND ($8::text IS NULL OR rep_id = $8)
    ) c
    GROUP BY outlet_id
), fill_lines AS (
    -- Each ordered SKU of the period's orders that have a delivery, with the units delivered against it (a SKU the
    -- deliveries left out counts as ordered and not delivered).
    SELECT o.outlet_id, s.ordered_units AS ordered, least(s.delivered_counted, s.ordered_units) AS delivered
    FROM sales_orders o
    CROSS JOIN LATERAL sales_order_skus(o.distributor_id, o.order_id) s
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE o.day BETWEEN $3 AND $4
      AND EXISTS (
          SELECT 1 FROM sales_deliveries d WHERE d.distributor_id = o.distributor_id AND d.order_id = o.order_id
      )
      AND ($6::text IS NULL OR k.brand = $6) AND ($7::text IS NULL OR s.sku_id = $7)
      AND ($8::text IS NULL OR o.rep_id = $8)
), fill AS (
    -- Fill rate: ordered units of the period's orders that have a delivery, against the units delivered for
    -- them (capped at the ordered quantity, so an over-delivered line cannot hide a short one).
    SELECT outlet_id, sum(ordered) AS ordered, sum(delivered) AS delivered FROM fill_lines GROUP BY outlet_id
), active AS (
    -- Every known outlet is active (an order not cancelled matching the filters in the dormancy window) or dormant.
    SELECT o.outlet_id, EXISTS (
        SELECT 1 FROM sales_daily s LEFT JOIN skus k ON k.sku_id = s.sku_id
        WHERE s.outlet_id = o.outlet_id AND s.day BETWEEN $9 AND $4 AND s.lines > 0
          AND ($6::text IS NULL OR k.brand = $6) AND ($7::text IS NULL OR s.sku_id = $7)
          AND ($8::text IS NULL OR s.rep_id = $8)
    ) AS yes
    FROM outlets o
    -- Narrowed to a rep: only the outlets it ever called on, so other reps' outlets are not listed at zero.
    WHERE $8::text IS NULL OR o.outlet_id IN (
        SELECT outlet_id FROM kpi_orders_daily WHERE rep_id = $8
        UNION SELECT outlet_id FROM kpi_visits_daily WHERE rep_id = $8
    )
), sources AS (
    -- Each source is summed per outlet (or distributor) first, then spread into (measure, amount) rows.
    SELECT a.outlet_id, NULL::text AS distributor_id, m.measure, m.amount
    FROM sales a
    CROSS JOIN LATERAL (VALUES ('value', a.value), ('units', a.units), ('lines', a.lines),
        ('previous_value', a.previous_value), ('previous_units', a.previous_units)) AS m(measure, amount)
    UNION ALL
    SELECT NULL, a.distributor_id, m.measure, m.amount
    FROM primary_sales a
    CROSS JOIN LATERAL (VALUES ('primary_value', a.value), ('primary_units', a.units)) AS m(measure, amount)
    UNION ALL
    SELECT a.outlet_id, NULL, m.measure, m.amount
    FROM calls a
    CROSS JOIN LATERAL (VALUES ('orders', a.orders), ('order_lines', a.order_lines), ('visits', a.visits),
        ('productive_visits', a.productive)) AS m(measure, amount)
    UNION ALL
    SELECT a.outlet_id, NULL, m.measure, m.amount
    FROM fill a
    CROSS JOIN LATERAL (VALUES ('fill_ordered_units', a.ordered), ('fill_delivered_units', a.delivered))
        AS m(measure, amount)
    UNION ALL
    SELECT a.outlet_id, NULL, m.measure, m.amount
    FROM active a
    CROSS JOIN LATERAL (VALUES ('active_outlets', a.yes::int), ('dormant_outlets', (NOT a.yes)::int))
        AS m(measure, amount)
), placed AS (
    SELECT x.measure, x.amount,
           CASE $1 WHEN 'national' THEN 'national' WHEN 'zone' THEN g.zone_id WHEN 'region' THEN g.region_id
                   WHEN 'distributor' THEN g.distributor_id ELSE x.outlet_id END AS node_id,
           CASE $1 WHEN 'national' THEN 'National' WHEN 'zone' THEN g.zone_name WHEN 'region' THEN g.region_name
                   WHEN 'distributor' THEN g.distributor_name ELSE o.name END AS node_name,
           CASE $1 WHEN 'region' THEN g.zone_id WHEN 'distributor' THEN g.region_id
                   WHEN 'outlet' THEN g.distributor_id END AS parent_id
    FROM sources x
    LEFT JOIN outlets o ON o.outlet_id = x.outlet_id
    LEFT JOIN distributor_geography g ON g.distributor_id = coalesce(o.distributor_id, x.distributor_id)
    WHERE ($11::text[] IS NULL OR g.distributor_id = ANY($11))
      AND ($12::text[] IS NULL OR o.channel = ANY($12)) AND ($13::text[] IS NULL OR o.outlet_class = ANY($13))
)
SELECT node_id, max(node_name) AS name, measure, coalesce(sum(amount), 0)::numeric AS amount
FROM placed
WHERE $2::text IS NULL OR parent_id = $2
GROUP BY node_id, measure
"""

# Sales per brand, SKU, rep, distributor, region, outlet channel or outlet class ($1) in the period [$2, $3] and
# the previous one [$7, $2), optionally only under one zone, region, distributor or outlet ($8), of some channels
# ($10) and outlet classes ($11). A channel or class is its own name.
_SALES_BY_SQL = """
SELECT CASE $1 WHEN 'brand' THEN k.brand WHEN 'sku' THEN s.sku_id WHEN 'rep' THEN s.rep_id
               WHEN 'distributor' THEN o.distributor_id WHEN 'channel' THEN o.channel
               WHEN 'outlet_class' THEN o.outlet_class ELSE g.region_id END AS id,
       max(CASE $1 WHEN 'brand' THEN k.brand WHEN 'sku' THEN k.name
                   WHEN 'rep' THEN coalesce(r.name, CASE WHEN s.rep_id = '' THEN 'Retailer returns (no rep)' END)
                   WHEN 'distributor' THEN g.distributor_name WHEN 'channel' THEN o.channel
                   WHEN 'outlet_class' THEN o.outlet_class ELSE g.region_name END) AS name,
       coalesce(sum(s.value) FILTER (WHERE s.day >= $2), 0) AS value,
       coalesce(sum(s.units) FILTER (WHERE s.day >= $2), 0) AS units,
       coalesce(sum(s.lines) FILTER (WHERE s.day >= $2), 0) AS lines,
       coalesce(sum(s.value) FILTER (WHERE s.day < $2), 0) AS previous_value
FROM sales_lines s
LEFT JOIN skus k ON k.sku_id = s.sku_id
LEFT JOIN reps r ON r.rep_id = s.rep_id
LEFT JOIN outlets o ON o.outlet_id = s.outlet_id
LEFT JOIN distributor_geography g ON g.distributor_id = o.distributor_id
WHERE s.day BETWEEN $7 AND $3
  AND ($4::text IS NULL OR k.brand = $4) AND ($5::text IS NULL OR s.sku_id = $5)
  AND ($6::text IS NULL OR s.rep_id = $6)
  AND ($8::text IS NULL OR $8 IN (g.zone_id, g.region_id, g.distributor_id, s.outlet_id))
  AND ($9::text[] IS NULL OR o.distributor_id = ANY($9))
  AND ($10::text[] IS NULL OR o.channel = ANY($10)) AND ($11::text[] IS NULL OR o.outlet_class = ANY($11))
GROUP BY 1
ORDER BY 3 DESC, 1 NULLS LAST
"""

# Every known outlet (with zero sales if it sold nothing; for a rep, every outlet it called on) plus outlets with
# sales not yet in reference data;
# optionally only under one zone, region or distributor ($8), of some channels ($10) and outlet classes ($11).
_RANKING_SQL = """
WITH totals AS (
    SELECT s.outlet_id, s.value, s.units, s.lines
    FROM sales_lines s
    LEFT JOIN skus k ON k.sku_id = s.sku_id
    WHERE s.day BETWEEN $1 AND $2
      AND ($3::text IS NULL OR k.brand = $3) AND ($4::text IS NULL OR s.sku_id = $4)
      AND ($5::text IS NULL OR s.rep_id = $5)
    UNION ALL
    SELECT outlet_id, 0, 0, 0 FROM outlets
    -- Narrowed to a rep: only the outlets it ever called on, so other reps' outlets are not listed at zero.
    WHERE $5::text IS NULL OR outlet_id IN (
        SELECT outlet_id FROM kpi_orders_daily WHERE rep_id = $5
        UNION SELECT outlet_id FROM kpi_visits_daily WHERE rep_id = $5
    )
)
SELECT t.outlet_id AS id, max(o.name) AS name, max(o.distributor_id) AS distributor_id,
       sum(t.value) AS value, sum(t.units) AS units, sum(t.lines) AS lines
FROM totals t
LEFT JOIN outlets o ON o.outlet_id = t.outlet_id
LEFT JOIN distributor_geography g ON g.distributor_id = o.distributor_id
WHERE ($8::text IS NULL OR $8 IN (g.zone_id, g.region_id, g.distributor_id, t.outlet_id))
  AND ($9::text[] IS NULL OR o.distributor_id = ANY($9))
  AND ($10::text[] IS NULL OR o.channel = ANY($10)) AND ($11::text[] IS NULL OR o.outlet_class = ANY($11))
GROUP BY t.outlet_id
ORDER BY CASE WHEN $6 = 'top' THEN sum(t.value) ELSE -sum(t.value) END DESC, t.outlet_id
LIMIT $7
"""

KPI_PROJECTIONS = ("kpi_sales", "kpi_visits", "kpi_deliveries")


@dataclass(frozen=True)
class KpiFilter:
    date_from: date
    date_to: date
    brand: str | None
    sku_id: str | None
    rep_id: str | None
    within: str | None = None
    distributors: list[str] | None = None
    """The caller's scope (api/caller.py): only sales of these distributors' outlets; None: national."""
    channels: list[str] | None = None
    """Only outlets of these channels (None: every outlet, and sales of outlets not yet known)."""
    outlet_classes: list[str] | None = None

    @property
    def segmented(self) -> bool:
        """Narrowed to outlets by channel or class: primary sales, which belong to no outlet, are left out."""
        return self.channels is not None or self.outlet_classes is not None

    @property
    def previous_from(self) -> date:
        """First day of the previous period of equal length, which ends the day before date_from."""
        return self.date_from - timedelta(days=(self.date_to - self.date_from).days + 1)


async def kpi_measures(
    conn: asyncpg.Connection,
    level: Level,
    parent_id: str | None,
    f: KpiFilter,
    dormant_from: date,
    *,
    with_primary: bool,
    distributors: list[str] | None = None,
) -> dict[str | None, tuple[str | None, dict[str, Decimal]]]:
    """Per node id: its name and the sum of each measure (primary sales only if `with_primary`)."""
    records = await conn.fetch(
        _KPI_SQL,
        level.value,
        parent_id,
        f.date_from,
        f.date_to,
        f.previous_from,
        f.brand,
        f.sku_id,
        f.rep_id,
        dormant_from,
        with_primary,
        distributors,
        f.channels,
        f.outlet_classes,
    )
    nodes: dict[str | None, tuple[str | None, dict[str, Decimal]]] = {}
    for r in records:
        name, measures = nodes.setdefault(r["node_id"], (r["name"], {}))
        measures[r["measure"]] = Decimal(r["amount"])
        if name is None and r["name"] is not None:
            nodes[r["node_id"]] = (r["name"], measures)
    return nodes


async def sales_by(conn: asyncpg.Connection, dimension: str, f: KpiFilter) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            _SALES_BY_SQL,
            dimension,
            f.date_from,
            f.date_to,
            f.brand,
            f.sku_id,
            f.rep_id,
            f.previous_from,
            f.within,
            f.distributors,
            f.channels,
            f.outlet_classes,
        )
    )


async def outlet_ranking(conn: asyncpg.Connection, f: KpiFilter, order: str, n: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            _RANKING_SQL,
            f.date_from,
            f.date_to,
            f.brand,
            f.sku_id,
            f.rep_id,
            order,
            n,
            f.within,
            f.distributors,
            f.channels,
            f.outlet_classes,
        )
    )


async def node_known(conn: asyncpg.Connection, node_id: str) -> bool:
    """Whether a zone, region, distributor or outlet has this id."""
    return bool(await conn.fetchval(_NODE_KNOWN_SQL, node_id))


_NODE_KNOWN_SQL = """
SELECT EXISTS (SELECT 1 FROM zones WHERE zone_id = $1) OR EXISTS (SELECT 1 FROM regions WHERE region_id = $1)
    OR EXISTS (SELECT 1 FROM distributors WHERE distributor_id = $1)
    OR EXISTS (SELECT 1 FROM outlets WHERE outlet_id = $1)
"""
