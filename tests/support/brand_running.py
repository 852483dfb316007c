"""The running totals per (brand, outlet) (query-api migration 0028) checked against the order lines."""

from typing import Any

import asyncpg

from query_api.figures.measures import NAMES

_BRAND_DAYS = f"""
SELECT k.brand, s.outlet_id, s.day, count(*) AS rows, {", ".join(f"sum(s.{n}) AS {n}" for n in NAMES)}
FROM sales_lines s JOIN skus k ON k.sku_id = s.sku_id
GROUP BY 1, 2, 3
"""


async def brand_running_differences(conn: asyncpg.Connection) -> list[Any]:
    """sales_outlet_brand_running and sales_outlet_brand_totals (migration 0028) against the lines as reference
    data places them now, summed per (brand, outlet) up to each day with lines (running rows for the days before a
    pair's last, migration 0032), with nothing queued. Empty when they agree."""
    figures = ("rows", *NAMES)
    running: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    totals: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    summed: dict[tuple[Any, Any], list[Any]] = {}
    for r in sorted(await conn.fetch(_BRAND_DAYS), key=lambda r: (r["brand"], r["outlet_id"], r["day"])):
        pair = (r["brand"], r["outlet_id"])
        first = summed.setdefault(pair, [r["day"], *(0 for _ in figures)])
        first[1:] = [a + r[n] for a, n in zip(first[1:], figures, strict=True)]
        running[(*pair, r["day"])] = tuple(first[1:])
        totals[pair] = (first[0], r["day"], *first[1:])
    for pair, (_, last, *_figures) in totals.items():  # a pair's last day is in its totals row only (0032)
        del running[(*pair, last)]
    found_running: dict[tuple[Any, ...], tuple[Any, ...]] = {
        (r["brand"], r["outlet_id"], r["day"]): tuple(r[n] for n in figures)
        for r in await conn.fetch("SELECT * FROM sales_outlet_brand_running")
    }
    found_totals: dict[tuple[Any, ...], tuple[Any, ...]] = {
        (r["brand"], r["outlet_id"]): (r["first_day"], r["day"], *(r[n] for n in figures))
        for r in await conn.fetch("SELECT * FROM sales_outlet_brand_totals")
    }
    return [
        (key, found.get(key), expected.get(key))
        for found, expected in ((found_running, running), (found_totals, totals))
        for key in found.keys() | expected.keys()
        if found.get(key) != expected.get(key)
    ]
