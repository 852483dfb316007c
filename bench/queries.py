"""Scenario 5, queries: latency of the GET /v1/sales drill-down at every level on the rebuilt projection,
vs DuckDB running the same drill-down SQL (query_api.reads.sales' statement) over the same tables exported to
Parquet."""

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import duckdb
import httpx

from bench.infra import Infra
from bench.results import Result, Target
from bench.stats import latency_summary_ms, percentile
from query_api.figures.measures import MEASURES, column_list
from query_api.reads.sales import _DRILL_SQL as DRILL_SQL
from sellthrough_devstack.services import ServiceProcess

TARGET = Target("p99 < 50 ms and <= 3x DuckDB", max_value=50, max_ratio=3.0)

# Table -> (export query, DuckDB column types): what the drill-down statement reads.
EXPORTS = {
    "sales_daily": (
        f"SELECT day, outlet_id, sku_id, {column_list()} FROM query_api.sales_daily",  # noqa: S608 (names from figures.measures)
        {
            "day": "DATE",
            "outlet_id": "VARCHAR",
            "sku_id": "VARCHAR",
            **{m.name: "DECIMAL(18,4)" if m.sql_type == "numeric" else "BIGINT" for m in MEASURES},
        },
    ),
    "outlets": (
        "SELECT outlet_id, name, distributor_id FROM query_api.outlets",
        {"outlet_id": "VARCHAR", "name": "VARCHAR", "distributor_id": "VARCHAR"},
    ),
    "distributors": (
        "SELECT distributor_id, name, region_id FROM query_api.distributors",
        {"distributor_id": "VARCHAR", "name": "VARCHAR", "region_id": "VARCHAR"},
    ),
    "regions": (
        "SELECT region_id, name, zone_id FROM query_api.regions",
        {"region_id": "VARCHAR", "name": "VARCHAR", "zone_id": "VARCHAR"},
    ),
    "zones": ("SELECT zone_id, name FROM query_api.zones", {"zone_id": "VARCHAR", "name": "VARCHAR"}),
    "skus": ("SELECT sku_id, brand FROM query_api.skus", {"sku_id": "VARCHAR", "brand": "VARCHAR"}),
}


@dataclass(frozen=True)
class Drill:
    level: str
    parent_id: str | None
    brand: str | None = None

    def params(self, date_from: date, date_to: date) -> dict[str, str]:
        params = {"level": self.level, "from": str(date_from), "to": str(date_to), "limit": "500"}
        if self.parent_id:
            params["parent_id"] = self.parent_id
        if self.brand:
            params["brand"] = self.brand
        return params

    def sql_args(self, date_from: date, date_to: date) -> list[Any]:
        # level, from, to, parent, brand, SKU, limit, the caller's distributors (None: a national caller's scope)
        return [self.level, date_from, date_to, self.parent_id, self.brand, None, 500, None]


async def _drills(database_url: str, requests: int, seed: int) -> list[Drill]:
    conn = await asyncpg.connect(database_url)
    try:
        zones = [r[0] for r in await conn.fetch("SELECT zone_id FROM query_api.zones")]
        regions = [r[0] for r in await conn.fetch("SELECT region_id FROM query_api.regions")]
        distributors = [r[0] for r in await conn.fetch("SELECT distributor_id FROM query_api.distributors")]
        brands = [r[0] for r in await conn.fetch("SELECT DISTINCT brand FROM query_api.skus")]
    finally:
        await conn.close()
    rng = random.Random(seed)
    drills = []
    for _ in range(requests):
        drills += [
            Drill("national", None),
            Drill("national", None, rng.choice(brands)),
            Drill("zone", None),
            Drill("region", rng.choice(zones)),
            Drill("distributor", rng.choice(regions)),
            Drill("outlet", rng.choice(distributors)),
        ]
    return drills


ROUND = 6
"""Drill-downs per round: national, national by brand, zone, region, distributor, outlet."""


def _name(drill: Drill) -> str:
    return f"{drill.level}{' by brand' if drill.brand else ''}"


async def export_parquet(database_url: str, directory: Path) -> duckdb.DuckDBPyConnection:
    """The drill-down's tables, from PostgreSQL to Parquet files, opened as views in an in-memory DuckDB."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    duck = duckdb.connect()
    conn = await asyncpg.connect(database_url)
    try:
        for table, (query, columns) in EXPORTS.items():
            csv_file, parquet = directory / f"{table}.csv", directory / f"{table}.parquet"
            await conn.copy_from_query(query, output=csv_file, format="csv", header=True)
            types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
            # Names and paths are this module's own constants, not input.
            export = f"COPY (SELECT * FROM read_csv('{csv_file}', header = true, columns = {{{types}}})) "  # noqa: S608
            duck.execute(export + f"TO '{parquet}' (FORMAT parquet)")
            csv_file.unlink()
            duck.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{parquet}')")  # noqa: S608
    finally:
        await conn.close()
    return duck


async def run(
    infra: Infra,
    query_api: ServiceProcess,
    database_url: str,
    today: date,
    requests: int,
    seed: int,
    max_seconds: float = 300,
) -> list[Result]:
    """`requests` rounds of the six drill-downs, each timed through the service and in DuckDB; the rounds
    stop early once `max_seconds` have gone (slow queries would otherwise make the run unbounded)."""
    date_from, date_to = today - timedelta(days=91), today
    # Autovacuum would analyze the freshly rebuilt tables within a minute or so; without statistics the
    # planner expects a handful of rows and joins the dimensions in nested loops. Measure the settled state.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    drills = await _drills(database_url, requests, seed)
    duck = await export_parquet(database_url, infra.work_dir / "parquet")

    service: dict[str, list[float]] = {}
    engine: dict[str, list[float]] = {}
    mismatches = []
    async with httpx.AsyncClient(base_url=query_api.url, headers=infra.header("analyst"), timeout=60) as client:
        for drill in drills[:12]:  # warm-up: caches, prepared statements, connections
            (await client.get("/v1/sales", params=drill.params(date_from, date_to))).raise_for_status()
            duck.execute(DRILL_SQL, drill.sql_args(date_from, date_to)).fetchall()
        deadline = time.perf_counter() + max_seconds
        for i, drill in enumerate(drills):
            if i % ROUND == 0 and time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            response = await client.get("/v1/sales", params=drill.params(date_from, date_to))
            service.setdefault(_name(drill), []).append(time.perf_counter() - started)
            response.raise_for_status()
            started = time.perf_counter()
            rows = duck.execute(DRILL_SQL, drill.sql_args(date_from, date_to)).fetchall()
            engine.setdefault(_name(drill), []).append(time.perf_counter() - started)
            served = response.json()["total"]["lines"]
            # By name: the statement's columns move whenever a measure is added (net sales added several).
            total_lines = [column[0] for column in duck.description or []].index("total_lines")
            if rows and int(rows[0][total_lines]) != served:
                mismatches.append(f"{drill}: service {served} lines, DuckDB {rows[0][total_lines]}")
    duck.close()

    all_service = [s for samples in service.values() for s in samples]
    all_engine = [s for samples in engine.values() for s in samples]
    details = {
        "range": [str(date_from), str(date_to)],
        "requests": len(all_service),
        "rounds_planned": requests,
        "time_budget_s": max_seconds,
        "per_level_service": {name: latency_summary_ms(s) for name, s in service.items()},
        "per_level_duckdb": {name: latency_summary_ms(s) for name, s in engine.items()},
        "totals_mismatches": mismatches[:5],
        "totals_agree": not mismatches,
    }
    p50, p99 = percentile(all_service, 50) * 1000, percentile(all_service, 99) * 1000
    duck50, duck99 = percentile(all_engine, 50) * 1000, percentile(all_engine, 99) * 1000
    return [
        Result("5 queries", "GET /v1/sales p50", p50, "ms", "DuckDB p50 (same SQL, Parquet)", duck50, None, details),
        Result(
            "5 queries",
            "GET /v1/sales p99",
            p99,
            "ms",
            "DuckDB p99 (same SQL, Parquet)",
            duck99,
            TARGET,
            checks={"totals_agree": not mismatches},
        ),
    ]
