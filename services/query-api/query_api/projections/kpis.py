"""KPI projections: orders and visits per day, rep and outlet. Sales by rep are read from sales_daily, and ordered
vs delivered units (fill rate) from the order facts (sales.py).

Every table is additive per event: the consumer applies each event exactly once, so sums never double count.
Business days are in the brand's time zone, as in sales_daily.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from query_api.projections.base import LeanSteps, Projection, collect, with_lean
from query_api.projections.freshness import NewestTimes, newest_times
from query_api.projections.kpis_bulk import KpiBulkLoader
from sellthrough_contracts import Envelope
from sellthrough_contracts.lean import LEAN_CONTRACTS
from sellthrough_contracts.trade import OrderCaptured, OrderDelivered, VisitRecorded
from sellthrough_runtime.db import json_rows

_UPSERT_ORDERS = """
INSERT INTO kpi_orders_daily (day, rep_id, outlet_id, orders, lines)
SELECT (r->>0)::date, r->>1, r->>2, (r->>3)::int, (r->>4)::int FROM jsonb_array_elements($1::text::jsonb) AS r
ON CONFLICT (day, rep_id, outlet_id) DO UPDATE
SET orders = kpi_orders_daily.orders + excluded.orders, lines = kpi_orders_daily.lines + excluded.lines
"""
_UPSERT_VISITS = """
INSERT INTO kpi_visits_daily (day, rep_id, outlet_id, visits, productive)
SELECT (r->>0)::date, r->>1, r->>2, (r->>3)::int, (r->>4)::int FROM jsonb_array_elements($1::text::jsonb) AS r
ON CONFLICT (day, rep_id, outlet_id) DO UPDATE
SET visits = kpi_visits_daily.visits + excluded.visits, productive = kpi_visits_daily.productive + excluded.productive
"""


@dataclass
class KpiRows:
    """One batch aggregated per table key, ready for the upserts (rows passed as JSON, see json_rows)."""

    orders: dict[tuple[date, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    visits: dict[tuple[date, str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))


@dataclass
class _Counting:
    rows: KpiRows
    zone: ZoneInfo


def _count_order(event: OrderCaptured, counting: _Counting) -> None:
    p = event.payload
    order = counting.rows.orders[(event.occurred_at.astimezone(counting.zone).date(), p.rep_id, p.outlet_id)]
    order[0] += 1
    order[1] += len(p.lines)


def _count_visit(event: VisitRecorded, counting: _Counting) -> None:
    v = event.payload
    visit = counting.rows.visits[(event.occurred_at.astimezone(counting.zone).date(), v.rep_id, v.outlet_id)]
    visit[0] += 1
    visit[1] += int(v.productive)


def _no_rows(_event: Envelope, _counting: _Counting) -> None:
    """Deliveries feed no KPI row here (fill rate reads the order facts) but make kpi_deliveries current."""


_STEPS: LeanSteps[_Counting] = with_lean(
    {OrderCaptured: _count_order, VisitRecorded: _count_visit, OrderDelivered: _no_rows}
)
_FRESHNESS = {OrderCaptured: "kpi_sales", VisitRecorded: "kpi_visits", OrderDelivered: "kpi_deliveries"}
"""The KPI projection each consumed class feeds: the API reports how current each figure is."""
_FED_BY: dict[type[Any], str] = _FRESHNESS | {
    lean: _FRESHNESS[contract] for lean, contract in LEAN_CONTRACTS.items() if contract in _FRESHNESS
}
"""The same, with the lean structs read for their contract classes."""


def aggregate_kpi_events(events: Sequence[Envelope], zone: ZoneInfo) -> KpiRows:
    return collect(_STEPS, events, _Counting(KpiRows(), zone)).rows


def _json_rows(table: Mapping[tuple[Any, ...], Any]) -> str:
    """A table's rows as one upsert parameter: its key fields followed by its value (an int) or values (a list)."""
    return json_rows([(*key, *value) if isinstance(value, list) else (*key, value) for key, value in table.items()])


@dataclass(frozen=True)
class KpiWrites:
    """A batch's KPI statements, ready to run: (upsert, its JSON rows), and each fed projection's newest event
    times, for record_freshness."""

    upserts: list[tuple[str, str]]
    freshness: list[NewestTimes]


def prepare_kpi_writes(events: Sequence[Envelope], zone: ZoneInfo) -> KpiWrites:
    """Everything write_kpis writes for these events, and their freshness, computed without the database."""
    rows = aggregate_kpi_events(events, zone)
    tables = (
        (_UPSERT_ORDERS, rows.orders),
        (_UPSERT_VISITS, rows.visits),
    )
    fed: dict[str, list[Envelope]] = {name: [] for name in _FRESHNESS.values()}
    for event in events:
        if (name := _FED_BY.get(type(event))) is not None:
            fed[name].append(event)
    newest = [newest_times(name, of_projection) for name, of_projection in fed.items()]
    return KpiWrites(
        [(statement, _json_rows(table)) for statement, table in tables if table],
        [times for times in newest if times is not None],
    )


async def write_kpis(conn: asyncpg.Connection, writes: KpiWrites) -> None:
    """The KPI rows; their freshness is the caller's to record (record_freshness), last in the transaction."""
    for statement, rows in writes.upserts:
        await conn.execute(statement, rows)


def _fed(writes: KpiWrites) -> list[NewestTimes]:
    return writes.freshness


KPIS = Projection(
    "kpis", tuple(_FRESHNESS), prepare_kpi_writes, write_kpis, _fed, KpiBulkLoader(aggregate_kpi_events, _FED_BY)
)
