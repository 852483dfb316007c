"""The KPI projection's bulk path for a rebuild (base.BulkLoader). Live, each batch upserts its per-(day, rep,
outlet) counts through a JSON parameter into the indexed KPI tables; replayed, a batch's counts (aggregated in
Python, as live) are copied (binary COPY) into unindexed, unlogged staging tables, and `finish` groups them into
the KPI tables with one INSERT .. SELECT each. Measured on 200k lines: the upserts were ~1/4 of the PostgreSQL
time of the replay's read phase (jsonb parsing, 12 upserts into an index), the copies a small part of that.

Every event reaching `load` is new (the applier claims event ids first), so the staged counts add up to what the
live upserts would have left. The staging tables live in the schema, so a rebuild interrupted before `finish`
goes on from its stored offsets with what was staged."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.freshness import NewestTimes, newest_times, record_freshness


class _Counts(Protocol):
    """What kpis.aggregate_kpi_events returns (kpis.KpiRows): counts per (day, rep, outlet)."""

    orders: dict[Any, list[int]]
    visits: dict[Any, list[int]]


Aggregate = Callable[[Sequence[Any], ZoneInfo], _Counts]

_START = """
CREATE UNLOGGED TABLE IF NOT EXISTS kpi_bulk_orders (
    day date, rep_id text, outlet_id text, orders integer, lines integer
) WITH (autovacuum_enabled = false);
CREATE UNLOGGED TABLE IF NOT EXISTS kpi_bulk_visits (
    day date, rep_id text, outlet_id text, visits integer, productive integer
) WITH (autovacuum_enabled = false);
"""
# ON CONFLICT adds to a row already there (none is, in a rebuild's new schema: kept so `finish` means the same as
# the live upserts whatever the table holds).
_FINISH = """
INSERT INTO kpi_orders_daily (day, rep_id, outlet_id, orders, lines)
SELECT day, rep_id, outlet_id, sum(orders), sum(lines) FROM kpi_bulk_orders GROUP BY day, rep_id, outlet_id
ON CONFLICT (day, rep_id, outlet_id) DO UPDATE
SET orders = kpi_orders_daily.orders + excluded.orders, lines = kpi_orders_daily.lines + excluded.lines;
INSERT INTO kpi_visits_daily (day, rep_id, outlet_id, visits, productive)
SELECT day, rep_id, outlet_id, sum(visits), sum(productive) FROM kpi_bulk_visits GROUP BY day, rep_id, outlet_id
ON CONFLICT (day, rep_id, outlet_id) DO UPDATE
SET visits = kpi_visits_daily.visits + excluded.visits, productive = kpi_visits_daily.productive + excluded.productive;
DROP TABLE kpi_bulk_orders, kpi_bulk_visits;
"""
_ORDER_COLUMNS = ["day", "rep_id", "outlet_id", "orders", "lines"]
_VISIT_COLUMNS = ["day", "rep_id", "outlet_id", "visits", "productive"]


def kpi_freshness(events: Sequence[Any], fed_by: Mapping[type[Any], str]) -> list[NewestTimes]:
    """The KPI projections these events feed (`fed_by`: event class -> projection), with their newest event times
    (as prepare_kpi_writes has them)."""
    fed: dict[str, list[Any]] = {}
    for event in events:
        if (name := fed_by.get(type(event))) is not None:
            fed.setdefault(name, []).append(event)
    return [times for name, share in fed.items() if (times := newest_times(name, share)) is not None]


class KpiBulkLoader:
    """base.BulkLoader of the KPI projection, given the live path's counting (`aggregate`) and its event class ->
    fed KPI projection map (kpis.py passes its own: this module does not import it, which imports this). `zone`:
    the business day's time zone; None reads the service's settings at `start`, as the sales loader does."""

    STANDS_ALONE = True
    """`finish` touches only the KPI tables: a rebuild runs it beside the sales projection's (base.stands_alone)."""

    def __init__(self, aggregate: Aggregate, fed_by: Mapping[type[Any], str], zone: ZoneInfo | None = None) -> None:
        self._aggregate = aggregate
        self._fed_by = fed_by
        self._zone = zone

    async def start(self, conn: asyncpg.Connection) -> None:
        if self._zone is None:
            from query_api.settings import QueryApiSettings

            self._zone = QueryApiSettings().zone
        await conn.execute(_START)

    def prepare_load(self, events: Sequence[Any]) -> tuple[_Counts, list[NewestTimes]]:
        """The batch's counts and freshness, without the database (base.PreparingBulkLoader: a rebuild runs it in
        its decoding thread)."""
        if self._zone is None:
            raise RuntimeError("KpiBulkLoader.load before start")
        return self._aggregate(events, self._zone), kpi_freshness(events, self._fed_by)

    async def load(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        await self.load_prepared(conn, self.prepare_load(events))

    async def load_prepared(self, conn: asyncpg.Connection, prepared: tuple[_Counts, list[NewestTimes]]) -> None:
        rows, freshness = prepared
        async with conn.transaction():
            if rows.orders:
                records = [(*key, *counts) for key, counts in rows.orders.items()]
                await conn.copy_records_to_table("kpi_bulk_orders", records=records, columns=_ORDER_COLUMNS)
            if rows.visits:
                records = [(*key, *counts) for key, counts in rows.visits.items()]
                await conn.copy_records_to_table("kpi_bulk_visits", records=records, columns=_VISIT_COLUMNS)
            await record_freshness(conn, freshness)

    async def finish(self, conn: asyncpg.Connection) -> None:
        await conn.execute(_FINISH)
