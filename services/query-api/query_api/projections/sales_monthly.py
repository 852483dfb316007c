"""The per (outlet, month) sales rollup (migration 0019), kept apart from the other rollups so the live path and the
bulk loader each take it with one call.

It is a regrouping of sales_outlet_daily (itself one of sales_lines) by the month of the day. Keyed by outlet, it
never moves when reference data changes (the distributor is joined when read), so adding is all it needs.
"""

from query_api.figures.measures import accumulate, column_list, sums

TABLE = "sales_outlet_monthly"


def outlet_month_rollup(lines: str) -> str:
    """A data-modifying CTE (`by_outlet_month AS (...)`) adding the rows of the CTE `lines` (sales_lines rows) to the
    rollup, set-based: one upsert per (outlet, month) the batch touches."""
    return f"""
by_outlet_month AS (
    INSERT INTO {TABLE} (outlet_id, month, {column_list()})
    SELECT outlet_id, date_trunc('month', day)::date, {sums()} FROM {lines} GROUP BY 1, 2
    ON CONFLICT (outlet_id, month) DO UPDATE SET {accumulate(TABLE)}
)"""  # noqa: S608 (names fixed in code)


def bulk_outlet_months() -> str:
    """The rollup regrouped from sales_outlet_daily after a bulk load (which filled that one from every line)."""
    return f"""
INSERT INTO {TABLE} (outlet_id, month, {column_list()})
SELECT outlet_id, date_trunc('month', day)::date, {sums()} FROM sales_outlet_daily GROUP BY 1, 2;
"""  # noqa: S608 (names fixed in code)
