"""Read queries for scheme performance, lift and claim leakage. Static SQL, `$n` parameters only.

Lift method (GET /v1/schemes/{id}):
- Scheme period: the business days from `valid_from` to the last instant before the effective end
  (`valid_to`, or an earlier SchemeEnded), capped at today for a running scheme. Pre-period: the same number
  of days immediately before it. Both use the latest recorded definition.
- Targeted outlets: the outlets (dimension tables, geography through `distributor_geography`) that the
  definition's targeting selects: every non-empty dimension must contain the outlet's value. Comparable
  untargeted outlets (control): outlets outside the targeting that share a (channel, outlet class) pair with
  a targeted outlet.
- Sales: units and value in `sales_lines` of the scheme's products (`applies_to`; none listed: every SKU)
  for each group in each period.
- Expected units of the targeted group without the scheme = their pre-period units x the control group's
  growth (control during / control pre). Incremental units = targeted during-period units - expected. Cost
  per incremental unit = scheme cost (discounts + free goods at cost, from SchemeApplied) / incremental
  units, when those are positive. This is a difference-in-differences estimate: it assumes targeted and
  control outlets would have grown alike, and it ignores sales shifted in time (stocking up before a
  scheme's end).
- Enough data (figures/scheme_lift.py): the lift is computed only when the whole pre-period lies within recorded
  history (every day of it on or after the first day any secondary sale was recorded, `history_from`) and
  both groups sold the scheme's products in it. Otherwise the figures are shown without an estimate, with
  the reason: `insufficient_history` (days of the pre-period covered vs needed) or `insufficient_baseline`
  (a group with no pre-period sales: no growth to compare). A partly covered pre-period understates its
  sales, and a control group measured so shows a growth that is only the start of recording: the estimate
  it gave was wrong, often a large negative lift.
"""

from datetime import date
from decimal import Decimal

import asyncpg

from query_api.figures.scheme_lift import GroupSales, LiftInputs

_SCHEME_FIGURES = """
SELECT d.scheme_id, d.name, d.benefit_kind, d.valid_from, d.valid_to, e.ended_at, d.total_budget,
       coalesce(a.outlets, 0) AS outlets, coalesce(a.orders, 0) AS orders, coalesce(a.units, 0) AS units,
       coalesce(a.discount_value, 0) AS discount_value, coalesce(a.free_units, 0) AS free_units,
       coalesce(a.free_units_cost, 0) AS free_units_cost,
       coalesce(c.claimed, 0) AS claimed, coalesce(c.approved, 0) AS approved,
       coalesce(c.over_claim, 0) AS over_claim, coalesce(c.claims, 0) AS claims
FROM scheme_definitions d
LEFT JOIN scheme_ends e USING (scheme_id)
LEFT JOIN LATERAL (
    SELECT count(DISTINCT x.outlet_id) AS outlets, count(*) AS orders, sum(x.qualifying_units) AS units,
           sum(x.discount_value) AS discount_value, sum(x.free_units) AS free_units,
           sum(x.free_units_cost) AS free_units_cost
    FROM scheme_applied x
    WHERE x.scheme_id = d.scheme_id AND (x.discount_value > 0 OR x.free_units > 0)
) a ON true
LEFT JOIN LATERAL (
    SELECT sum(y.claimed) AS claimed, sum(y.approved) AS approved, sum(y.over_claim) AS over_claim,
           count(*) AS claims
    FROM claim_assessments y WHERE y.scheme_id = d.scheme_id
) c ON true
WHERE $1::text IS NULL OR d.scheme_id = $1
ORDER BY d.valid_from DESC, d.scheme_id
LIMIT $2
"""

_LEAKAGE = """
SELECT distributor_id, count(*) AS claims, sum(claimed) AS claimed, sum(entitled) AS entitled,
       sum(approved) AS approved, sum(over_claim) AS over_claim
FROM claim_assessments WHERE scheme_id = $1
GROUP BY distributor_id ORDER BY sum(over_claim) DESC, distributor_id
"""

_LIFT = """
WITH s AS (
    SELECT d.*, (d.valid_from AT TIME ZONE $3)::date AS first_day,
           least(((least(d.valid_to, coalesce(e.ended_at, d.valid_to)) - interval '1 microsecond')
                  AT TIME ZONE $3)::date, $2::date) AS last_day
    FROM scheme_definitions d LEFT JOIN scheme_ends e USING (scheme_id)
    WHERE d.scheme_id = $1
), w AS (
    SELECT s.*, s.last_day - s.first_day + 1 AS days, s.first_day - (s.last_day - s.first_day + 1) AS pre_from
    FROM s
), placed AS (
    SELECT o.outlet_id, o.channel, o.outlet_class,
           (cardinality(w.zone_ids) = 0 OR g.zone_id = ANY(w.zone_ids))
           AND (cardinality(w.region_ids) = 0 OR g.region_id = ANY(w.region_ids))
           AND (cardinality(w.distributor_ids) = 0 OR o.distributor_id = ANY(w.distributor_ids))
           AND (cardinality(w.channels) = 0 OR o.channel = ANY(w.channels))
           AND (cardinality(w.outlet_classes) = 0 OR o.outlet_class = ANY(w.outlet_classes))
           AND (cardinality(w.outlet_ids) = 0 OR o.outlet_id = ANY(w.outlet_ids)) AS targeted
    FROM w CROSS JOIN outlets o
    LEFT JOIN distributor_geography g ON g.distributor_id = o.distributor_id
), segments AS (
    SELECT DISTINCT channel, outlet_class FROM placed WHERE targeted
), grouped AS (
    SELECT p.outlet_id, p.targeted FROM placed p JOIN segments USING (channel, outlet_class)
), sold AS (
    SELECT g.outlet_id, g.targeted, x.day, x.units, x.value
    FROM grouped g CROSS JOIN w
    JOIN sales_lines x ON x.outlet_id = g.outlet_id AND x.day BETWEEN w.pre_from AND w.last_day
    LEFT JOIN skus k ON k.sku_id = x.sku_id
    WHERE (cardinality(w.sku_ids) = 0 AND cardinality(w.brands) = 0)
       OR x.sku_id = ANY(w.sku_ids) OR k.brand = ANY(w.brands)
)
SELECT w.first_day, w.last_day, w.pre_from, w.days, t.targeted,
       (SELECT min(day) FROM sales_lines) AS history_from,
       (SELECT count(*) FROM grouped g WHERE g.targeted = t.targeted) AS outlets,
       coalesce(sum(x.units) FILTER (WHERE x.day >= w.first_day), 0) AS during_units,
       coalesce(sum(x.units) FILTER (WHERE x.day < w.first_day), 0) AS pre_units,
       coalesce(sum(x.value) FILTER (WHERE x.day >= w.first_day), 0) AS during_value,
       coalesce(sum(x.value) FILTER (WHERE x.day < w.first_day), 0) AS pre_value
FROM w CROSS JOIN (VALUES (true), (false)) AS t(targeted)
LEFT JOIN sold x ON x.targeted = t.targeted
GROUP BY w.first_day, w.last_day, w.pre_from, w.days, t.targeted
"""

_CLAIMS = """
SELECT distributor_id, claim_id, scheme_id, claimed, entitled, approved, over_claim, reasons, lines, assessed_at,
       revision, claim_revision, submissions
FROM claim_assessments
WHERE ($1::text IS NULL OR scheme_id = $1) AND ($2::text IS NULL OR distributor_id = $2)
  AND ($4::text[] IS NULL OR distributor_id = ANY($4))
ORDER BY over_claim DESC, assessed_at DESC, distributor_id, claim_id
LIMIT $3
"""


async def scheme_figures(conn: asyncpg.Connection, scheme_id: str | None, limit: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(_SCHEME_FIGURES, scheme_id, limit))


async def leakage(conn: asyncpg.Connection, scheme_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(_LEAKAGE, scheme_id))


async def lift_inputs(conn: asyncpg.Connection, scheme_id: str, today: date, zone: str) -> LiftInputs | None:
    """Sales of both groups in both periods; None before the scheme has run a day."""
    rows = await conn.fetch(_LIFT, scheme_id, today, zone)
    if not rows or rows[0]["days"] < 1:
        return None
    groups = {
        row["targeted"]: GroupSales(
            int(row["outlets"]),
            int(row["during_units"]),
            int(row["pre_units"]),
            Decimal(row["during_value"]),
            Decimal(row["pre_value"]),
        )
        for row in rows
    }
    first = rows[0]
    return LiftInputs(
        first["first_day"],
        first["last_day"],
        first["pre_from"],
        first["days"],
        first["history_from"],
        groups[True],
        groups[False],
    )


async def claims(
    conn: asyncpg.Connection,
    scheme_id: str | None,
    distributor_id: str | None,
    limit: int,
    distributors: list[str] | None = None,
) -> list[asyncpg.Record]:
    """`distributors`: the caller's scope (api/caller.py); None: national."""
    return list(await conn.fetch(_CLAIMS, scheme_id, distributor_id, limit, distributors))
