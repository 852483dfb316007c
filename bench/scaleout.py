"""Scenario 8, scale-out: the pipeline (order-capture's outbox -> relay -> Kafka -> query-api's projection) with one
query-api process and with several, each a member of the projection group with one consumer
(SELLTHROUGH_PROJECTION_CONSUMERS=1: on Tansu, members in separate processes; docs/architecture.md). Each run has
its own database and broker, so the runs differ only in the members. Reported: events/s of each, their ratio,
the relay's own rows/s, how the trade topic's partitions split the work between the members, and whether the
projection holds exactly the lines, units and value sent, by distributor.

As in scenario 2 the events are written straight into the outbox (as accepted events would be). A warm-up batch is
applied first so that the group has settled (every member joined, partitions assigned) before the clock starts."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka.partitioner import murmur2
from prometheus_client.parser import text_string_to_metric_families

from bench.data import OUTBOX_COLUMNS, OrderFactory, accepted, line_rows, outbox_row
from bench.infra import Infra
from bench.projection import applied, wait_until_applied
from bench.results import Result
from query_api.main import PROJECTION_GROUP
from query_api.reads.sales import DrillQuery, Level, drill
from sellthrough_contracts.topics import REFERENCE, TRADE
from sellthrough_devstack.demo import post_all, wait_for_masters
from sellthrough_devstack.services import ServiceProcess

SCENARIO = "8 scale-out"

Totals = dict[str, tuple[int, int, Decimal]]
"""distributor id -> (lines, units, ordered value)."""


@dataclass(frozen=True)
class ScaleoutParams:
    events: int
    members: tuple[int, ...] = (1, 3)
    partitions: int = TRADE.partitions
    """The trade topic's partition count in these runs (the other topics keep the contracts' counts)."""


@dataclass(frozen=True)
class _Run:
    members: int
    seconds: float
    relay_seconds: float
    applied_by_member: list[float]
    expected: Totals
    projected: Totals
    cpu_seconds: dict[str, float]
    """CPU time (user + system) each process (PostgreSQL: the whole server) used while the timed events went
    through: work per event, less noisy on a shared machine than the rates."""

    @property
    def exact(self) -> bool:
        return self.projected == self.expected


def key_spread(distributors: list[str], partitions: int) -> dict[str, Any]:
    """How the distributors' keys fall on the trade topic's partitions: the partition the relay's producer picks for
    each (murmur2 of the key, as every Kafka client's default partitioner)."""
    per_partition = Counter((murmur2(d.encode()) & 0x7FFFFFFF) % partitions for d in distributors)
    counts = [per_partition.get(p, 0) for p in range(partitions)]
    return {
        "distributors_by_partition": counts,
        "max_over_mean": round(max(counts) * partitions / len(distributors), 2),
    }


def expected_totals(orders: list[dict[str, Any]]) -> Totals:
    lines: Counter[str] = Counter()
    units: Counter[str] = Counter()
    value: dict[str, Decimal] = {}
    for order in orders:
        distributor = order["payload"]["distributor_id"]
        for _day, _outlet, _sku, line_value, line_units, _lines in line_rows(order):
            lines[distributor] += 1
            units[distributor] += line_units
            value[distributor] = value.get(distributor, Decimal(0)) + line_value
    return {d: (lines[d], units[d], value[d]) for d in lines}


async def projected_totals(conn: asyncpg.Connection) -> Totals:
    """Every distributor's lines, units and ordered value over all time, read by query-api's own drill-down."""
    query = DrillQuery(Level.DISTRIBUTOR, None, date(2000, 1, 1), date(2100, 1, 1))
    async with conn.transaction():
        await conn.execute("SET LOCAL search_path TO query_api")
        result = await drill(conn, query)
    return {
        str(row.id): (
            int(row.figures["lines"]),
            int(row.figures["ordered_units"]),
            Decimal(row.figures["ordered_value"]),
        )
        for row in result.rows
        if int(row.figures["lines"])
    }


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, its live descendants and the children it has reaped (PostgreSQL's
    ended backends) so far."""
    root = psutil.Process(pid)
    times = root.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for process in root.children(recursive=True):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _cpu_pids(infra: Infra, bootstrap: str, started: list[ServiceProcess]) -> dict[str, int]:
    """The processes whose CPU time is reported: the services, and the embedded broker and PostgreSQL server."""
    pids: dict[str, int] = {}
    for i, service in enumerate(started):
        assert service.process is not None
        pids[service.name if i == 0 else f"query-api {i}"] = service.process.pid
    for broker in infra.brokers:
        if broker.bootstrap_servers == bootstrap and broker.process is not None:
            pids["tansu"] = broker.process.pid
    if infra.postgres is not None:
        pids["postgres"] = int((infra.postgres.data_dir / "postmaster.pid").read_text().split()[0])
    return pids


def applied_by(member: ServiceProcess) -> float:
    """Trade records this member's projection consumer applied (its own metrics)."""
    text = httpx.get(f"{member.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sellthrough_consumer_events_applied_total"
        and sample.labels.get("group") == PROJECTION_GROUP
        and sample.labels.get("topic") == TRADE.name
    )


async def _wait_relayed(conn: asyncpg.Connection, through: int, timeout: float) -> float:
    """Poll until order-capture's relay has published every outbox row up to seq `through`."""
    deadline = time.perf_counter() + timeout
    while True:
        mark = await conn.fetchval("SELECT published_through FROM order_capture.outbox_progress")
        now = time.perf_counter()
        if mark is not None and mark >= through:
            return now
        if now > deadline:
            raise TimeoutError(f"relay: published through {mark} of {through} after {timeout:.0f}s")
        await asyncio.sleep(0.02)


async def _copy_into_outbox(conn: asyncpg.Connection, orders: list[dict[str, Any]]) -> int:
    """Queue the orders as accepted events; returns the highest outbox seq."""
    now = datetime.now(UTC)
    records = [outbox_row(accepted(o, now)) for o in orders]
    async with conn.transaction():
        await conn.copy_records_to_table("outbox", records=records, columns=OUTBOX_COLUMNS, schema_name="order_capture")
    return int(await conn.fetchval("SELECT max(seq) FROM order_capture.outbox"))


async def _one_run(
    infra: Infra, masters: list[dict[str, Any]], factory: OrderFactory, today: date, p: ScaleoutParams, members: int
) -> _Run:
    label = f"scale{members}"
    database_url = await infra.create_database(label)
    bootstrap = await infra.broker(label, {TRADE.name: p.partitions})
    started: list[ServiceProcess] = []
    try:
        member_labels = [f"{label}-{i + 1}" for i in range(members)]
        started += infra.start_services(
            [("order-capture", label), *(("query-api", member) for member in member_labels)],
            database_url,
            bootstrap,
            {member: {"SELLTHROUGH_PROJECTION_CONSUMERS": "1"} for member in member_labels},
        )
        order_capture = started[0]
        token = infra.tokens["admin"].token
        await asyncio.to_thread(post_all, order_capture.url, token, masters, "reference data")
        await asyncio.to_thread(wait_for_masters, order_capture.url, token, masters)
        await wait_until_applied(database_url, REFERENCE.name, len(masters), f"{label}: reference", timeout=300)

        warm_up = [factory.past_order(today, 30, 2) for _ in range(max(10, p.events // 20))]
        timed = [factory.past_order(today, 30, 2) for _ in range(p.events)]
        conn = await asyncpg.connect(database_url)
        try:
            await _copy_into_outbox(conn, warm_up)
            await wait_until_applied(database_url, TRADE.name, len(warm_up), f"{label}: warm-up", timeout=300)
            before = await applied(conn, TRADE.name)
            through = await _copy_into_outbox(conn, timed)
            pids = _cpu_pids(infra, bootstrap, started)
            cpu_before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
            clock = time.perf_counter()
            relayed, done = await asyncio.gather(
                _wait_relayed(conn, through, timeout=900),
                wait_until_applied(
                    database_url, TRADE.name, before + len(timed), f"{label}: outbox -> projection", timeout=900
                ),
            )
            cpu = {name: tree_cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            projected = await projected_totals(conn)
        finally:
            await conn.close()
        return _Run(
            members,
            done - clock,
            relayed - clock,
            [applied_by(m) for m in started[1:]],
            expected_totals(warm_up + timed),
            projected,
            {
                "order-capture": cpu["order-capture"],
                "query-api (all members)": sum(v for k, v in cpu.items() if k.startswith("query-api")),
                **{k: v for k, v in cpu.items() if k in ("tansu", "postgres")},
            },
        )
    finally:
        infra.stop_services(started)
        infra.stop_broker(bootstrap)


async def run(
    infra: Infra, masters: list[dict[str, Any]], factory: OrderFactory, today: date, p: ScaleoutParams
) -> list[Result]:
    runs = [await _one_run(infra, masters, factory, today, p, members) for members in p.members]
    first = runs[0]
    results = []
    for r in runs:
        rate = p.events / r.seconds
        spread = [
            round(a / sum(r.applied_by_member), 3) if sum(r.applied_by_member) else 0 for a in r.applied_by_member
        ]
        details = {
            "events": p.events,
            "trade_partitions": p.partitions,
            "members": r.members,
            "seconds": round(r.seconds, 3),
            "relay_seconds": round(r.relay_seconds, 3),
            "relay_rows_per_s": round(p.events / r.relay_seconds, 1),
            "applied_by_member": r.applied_by_member,
            "share_by_member": spread,
            "cpu_ms_per_event": {name: round(1000 * cpu / p.events, 3) for name, cpu in r.cpu_seconds.items()},
            "cpu_cores_busy": {name: round(cpu / r.seconds, 2) for name, cpu in r.cpu_seconds.items()},
            "distributors": len(r.expected),
            "key_spread": key_spread(sorted(r.expected), p.partitions),
            "lines_sent": sum(t[0] for t in r.expected.values()),
            "lines_projected": sum(t[0] for t in r.projected.values()),
        }
        checks = {"projection_exact": r.exact, "every_member_applied": all(a > 0 for a in r.applied_by_member)}
        name = f"pipeline, {r.members} query-api member{'s' if r.members > 1 else ''}"
        if r is first:
            results.append(Result(SCENARIO, name, rate, "events/s", details=details, checks=checks))
        else:
            base = f"pipeline, {first.members} query-api member{'s' if first.members > 1 else ''}"
            results.append(
                Result(SCENARIO, name, rate, "events/s", base, p.events / first.seconds, None, details, checks)
            )
    return results
