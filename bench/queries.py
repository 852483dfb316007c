"""Scenario 5, queries: the GET /v1/sales drill-down on the rebuilt projection, on every path query-api has (every
level; brand at national and outlet level; a SKU at every level; outlet level across distributors, without and with
a brand), three ways:

- through HTTP (the service, as a client sees it);
- database time: the very statement and arguments query-api runs for that request (captured from
  query_api.reads.sales.drill, so whatever statement drill_statement picks), run through asyncpg and timed;
- DuckDB running that same statement over the same tables (bench/duck.py: exported to Parquet).

The totals of the three must agree (a check: a fast wrong answer meets nothing)."""

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

import asyncpg
import duckdb
import httpx

from bench import duck
from bench.infra import Infra
from bench.results import Result, Target
from bench.stats import latency_summary_ms, percentile
from query_api.reads.sales import DrillQuery, Level, drill
from sellthrough_devstack.services import ServiceProcess

HTTP_TARGET = Target("p99 < 50 ms on every path", max_value=50)
LINE_LEVEL_TARGET = Target("<= 2x DuckDB on every line-level path (median)", max_ratio=2.0)
SCHEMA = "query_api"
SERVER_SETTINGS = {"search_path": SCHEMA, "plan_cache_mode": "force_custom_plan"}
"""The session query-api's pool has (query_api/main.py: its schema, and custom plans for prepared statements, without
which Postgres switches the drill-down to a generic plan after five runs): database time is timed in the same."""


@dataclass(frozen=True)
class Drill:
    level: str
    parent_id: str | None
    brand: str | None = None
    sku_id: str | None = None

    @property
    def path(self) -> str:
        everywhere = " across distributors" if self.level == "outlet" and self.parent_id is None else ""
        return self.level + everywhere + (" by brand" if self.brand else "") + (" by SKU" if self.sku_id else "")

    @property
    def line_level(self) -> bool:
        """Served from order lines rather than rollups: any SKU filter, a brand at outlet level (read from running
        totals per brand and outlet since round 5, still held to the line-level target against DuckDB running the
        same statement)."""
        return self.sku_id is not None or (self.brand is not None and self.level == "outlet")

    def params(self, date_from: date, date_to: date) -> dict[str, str]:
        params = {"level": self.level, "from": str(date_from), "to": str(date_to), "limit": "500"}
        for name, value in (("parent_id", self.parent_id), ("brand", self.brand), ("sku", self.sku_id)):
            if value is not None:
                params[name] = value
        return params

    def query(self, date_from: date, date_to: date) -> DrillQuery:
        """What GET /v1/sales builds for these parameters (an analyst: national scope)."""
        return DrillQuery(Level(self.level), self.parent_id, date_from, date_to, self.brand, self.sku_id, 500, None)


class _Recorder:
    """Stands in for a connection to learn which statement, with which arguments, drill() runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, statement: str, *args: Any) -> list[Any]:
        self.calls.append((statement, args))
        return []


async def statement_of(query: DrillQuery) -> tuple[str, tuple[Any, ...]]:
    recorder = _Recorder()
    await drill(cast(asyncpg.Connection, recorder), query)
    if len(recorder.calls) != 1:
        raise RuntimeError(f"drill() ran {len(recorder.calls)} statements; the bench times exactly one")
    return recorder.calls[0]


async def _drills(database_url: str, rounds: int, seed: int) -> list[Drill]:
    conn = await asyncpg.connect(database_url)
    try:
        zones = [r[0] for r in await conn.fetch("SELECT zone_id FROM query_api.zones")]
        regions = [r[0] for r in await conn.fetch("SELECT region_id FROM query_api.regions")]
        distributors = [r[0] for r in await conn.fetch("SELECT distributor_id FROM query_api.distributors")]
        brands = [r[0] for r in await conn.fetch("SELECT DISTINCT brand FROM query_api.skus")]
        skus = [r[0] for r in await conn.fetch("SELECT sku_id FROM query_api.skus")]
    finally:
        await conn.close()
    rng = random.Random(seed)
    drills = []
    for _ in range(rounds):
        zone, region, distributor = rng.choice(zones), rng.choice(regions), rng.choice(distributors)
        drills += [
            Drill("national", None),
            Drill("national", None, rng.choice(brands)),
            Drill("zone", None),
            Drill("region", zone),
            Drill("distributor", region),
            Drill("outlet", distributor),
            Drill("outlet", distributor, rng.choice(brands)),
            # Every outlet ranked, no parent (a distributor's own users land here: their scope is the parent).
            Drill("outlet", None),
            Drill("outlet", None, rng.choice(brands)),
            *(
                Drill(level, parent, None, rng.choice(skus))
                for level, parent in (
                    ("national", None),
                    ("zone", None),
                    ("region", zone),
                    ("distributor", region),
                    ("outlet", distributor),
                )
            ),
        ]
    return drills


ROUND = 14
"""Drill-downs per round (_drills)."""


def _duck_total(duck_connection: duckdb.DuckDBPyConnection, rows: list[Any]) -> int:
    if not rows:
        return 0
    # By name: the statement's columns move whenever a measure is added.
    names = [column[0] for column in duck_connection.description or []]
    return int(rows[0][names.index("total_lines")])


@dataclass
class Timings:
    http: dict[str, list[float]]
    database: dict[str, list[float]]
    duckdb: dict[str, list[float]]

    def add(self, path: str, http: float, database: float, engine: float) -> None:
        for store, seconds in ((self.http, http), (self.database, database), (self.duckdb, engine)):
            store.setdefault(path, []).append(seconds)


def _ms(samples: Sequence[float], q: float) -> float:
    return percentile(samples, q) * 1000


async def run(
    infra: Infra,
    query_api: ServiceProcess,
    database_url: str,
    today: date,
    rounds: int,
    seed: int,
    max_seconds: float = 300,
) -> list[Result]:
    """`rounds` rounds of every path, each timed three ways; the rounds stop early once `max_seconds` have gone
    (slow queries would otherwise make the run unbounded)."""
    date_from, date_to = today - timedelta(days=91), today
    # Autovacuum would analyze the freshly rebuilt tables within a minute or so; without statistics the
    # planner expects a handful of rows and joins the dimensions in nested loops. Measure the settled state.
    conn = await asyncpg.connect(database_url, server_settings=SERVER_SETTINGS)
    try:
        await conn.execute("ANALYZE")
        drills = await _drills(database_url, rounds, seed)
        statements = {d: await statement_of(d.query(date_from, date_to)) for d in drills}
        engine, counts = await duck.export(
            database_url, SCHEMA, {s for s, _ in statements.values()}, infra.work_dir / "parquet"
        )
        timings = Timings({}, {}, {})
        mismatches: list[str] = []
        async with httpx.AsyncClient(base_url=query_api.url, headers=infra.header("analyst"), timeout=60) as client:
            for drill_ in drills[: 2 * ROUND]:  # warm-up: caches, prepared statements, connections
                (await client.get("/v1/sales", params=drill_.params(date_from, date_to))).raise_for_status()
                statement, args = statements[drill_]
                await conn.fetch(statement, *args)
                engine.execute(statement, list(args)).fetchall()
            deadline = time.perf_counter() + max_seconds
            for i, drill_ in enumerate(drills):
                if i % ROUND == 0 and time.perf_counter() > deadline:
                    break
                statement, args = statements[drill_]
                started = time.perf_counter()
                response = await client.get("/v1/sales", params=drill_.params(date_from, date_to))
                http_seconds = time.perf_counter() - started
                response.raise_for_status()
                started = time.perf_counter()
                records = await conn.fetch(statement, *args)
                database_seconds = time.perf_counter() - started
                started = time.perf_counter()
                rows = engine.execute(statement, list(args)).fetchall()
                engine_seconds = time.perf_counter() - started
                timings.add(drill_.path, http_seconds, database_seconds, engine_seconds)
                served = int(response.json()["total"]["lines"])
                in_database = int(records[0]["total_lines"]) if records else 0
                in_duckdb = _duck_total(engine, rows)
                if not served == in_database == in_duckdb:
                    mismatches.append(f"{drill_}: HTTP {served}, Postgres {in_database}, DuckDB {in_duckdb} lines")
        engine.close()
    finally:
        await conn.close()
    return _results(timings, drills, mismatches, counts, (date_from, date_to), rounds, max_seconds)


def _results(
    timings: Timings,
    drills: list[Drill],
    mismatches: list[str],
    counts: dict[str, tuple[int, int]],
    period: tuple[date, date],
    rounds: int,
    max_seconds: float,
) -> list[Result]:
    line_level = sorted({d.path for d in drills if d.line_level} & timings.database.keys())
    per_path = {
        path: {
            "line_level": path in line_level,
            "http": latency_summary_ms(timings.http[path]),
            "database": latency_summary_ms(timings.database[path]),
            "duckdb": latency_summary_ms(timings.duckdb[path]),
        }
        for path in timings.http
    }
    worst_http = max(timings.http, key=lambda p: _ms(timings.http[p], 99))
    worst_line = max(line_level, key=lambda p: _ms(timings.database[p], 50) / _ms(timings.duckdb[p], 50))
    every_http = [s for samples in timings.http.values() for s in samples]
    details = {
        "range": [str(period[0]), str(period[1])],
        "requests": len(every_http),
        "rounds_planned": rounds,
        "time_budget_s": max_seconds,
        "tables_exported_to_duckdb": {t: {"postgres_rows": p, "duckdb_rows": d} for t, (p, d) in counts.items()},
        "per_path": per_path,
        "worst_http_path": worst_http,
        "worst_line_level_path": worst_line,
        "totals_mismatches": mismatches[:5],
        "totals_agree": not mismatches,
    }
    checks = {"totals_agree": not mismatches, "exported_rows_agree": all(p == d for p, d in counts.values())}
    return [
        Result(
            "5 queries",
            f"GET /v1/sales p99, worst path ({worst_http})",
            _ms(timings.http[worst_http], 99),
            "ms",
            "database time p99 of that path",
            _ms(timings.database[worst_http], 99),
            HTTP_TARGET,
            details,
            checks,
        ),
        Result("5 queries", "GET /v1/sales p50, all paths", _ms(every_http, 50), "ms"),
        Result(
            "5 queries",
            f"database time p50, worst line-level path ({worst_line})",
            _ms(timings.database[worst_line], 50),
            "ms",
            "DuckDB p50, same statement and tables",
            _ms(timings.duckdb[worst_line], 50),
            LINE_LEVEL_TARGET,
            checks=checks,
        ),
    ]
