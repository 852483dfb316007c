"""A worker's copy of the masters (adapters/masters_cache.py) against a real PostgreSQL: batches of known masters
read nothing, and a master changed by the reference consumer or by hand is seen within the stated bound (once the
worker's loop has handled the commit's notification); without a listening connection nothing is read from the
copy. Each check can fail: a copy that missed a change answers the old distributor."""

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

import order_capture
from order_capture.adapters.masters import apply_reference_events
from order_capture.adapters.masters_cache import LISTENER_NAME, MastersCache
from order_capture.domain.territory import RepTerritory
from order_capture.domain.validation import KnownMasters, References
from order_capture.domain.verification import OutletPlace
from order_capture.main import SCHEMA
from sellthrough_contracts import parse_event
from sellthrough_runtime.db import create_pool, migrate
from tests.support.brand import MASTERS_TIME, event, reference_events, rep_with_territory

MIGRATIONS = Path(order_capture.__file__).parent / "migrations"
STALENESS_BOUND_S = 1.0
"""What a quiet test machine must meet: the notification is handled as soon as the loop is idle."""
_numbers = itertools.count()
REFS = References(outlets={"O1", "O3"}, skus={"S1", "S2"}, reps={"REP-1"}, distributors={"D1"})


@pytest.fixture
async def database(postgres_url: str) -> str:
    name = f"masters_cache_{next(_numbers)}_{int(time.time())}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    await migrate(url, SCHEMA, MIGRATIONS)
    pool = await create_pool(url, SCHEMA, min_size=1, max_size=1)
    async with pool.acquire() as conn, conn.transaction():
        await apply_reference_events(conn, [parse_event(e) for e in reference_events()])
    await pool.close()
    return url


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    pool = await create_pool(database, SCHEMA, min_size=1, max_size=1)  # as the service's: its JSON codecs
    async with pool.acquire() as connection:
        yield connection
    await pool.close()


@pytest.fixture
def listening() -> Iterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()


async def _live(cache: MastersCache, database: str, tasks: list[asyncio.Task[None]]) -> None:
    tasks.append(asyncio.create_task(cache.listen(database)))
    await asyncio.wait_for(cache.listening(), timeout=10)


async def _read(
    cache: MastersCache, conn: asyncpg.Connection, refs: References = REFS
) -> tuple[KnownMasters, dict[str, OutletPlace]]:
    async def connection() -> asyncpg.Connection:
        return conn

    return await cache.masters_and_places(connection, refs)


def _moved(outlet: str, distributor: str, minutes: int) -> dict[str, object]:
    """The outlet registered again, later, with another distributor."""
    payload = {
        "outlet_id": outlet,
        "name": f"Shop {outlet}",
        "distributor_id": distributor,
        "channel": "pharmacy",
        "outlet_class": "A",
        "location": {"lat": 12.9, "lon": 77.6, "accuracy_m": 5},
    }
    return event("OutletRegistered", payload, occurred_at=MASTERS_TIME.replace(minute=minutes))


async def _changes_within_bound(cache: MastersCache, conn: asyncpg.Connection, outlet: str, distributor: str) -> float:
    """Seconds from the commit until the copy answers `outlet`'s new distributor."""
    committed = time.monotonic()
    while (await _read(cache, conn, References(outlets={outlet})))[0].outlet_distributor.get(outlet) != distributor:
        assert time.monotonic() - committed < STALENESS_BOUND_S, f"{outlet} still stale after {STALENESS_BOUND_S}s"
        await asyncio.sleep(0.005)
    return time.monotonic() - committed


async def test_batches_of_known_masters_read_them_once_and_see_a_change_within_the_bound(
    database: str, conn: asyncpg.Connection, listening: list[asyncio.Task[None]]
) -> None:
    cache = MastersCache(SCHEMA)
    await _live(cache, database, listening)
    first, places = await _read(cache, conn)
    assert first.outlet_distributor == {"O1": "D1", "O3": "D2"}
    assert first.skus == {"S1", "S2"}
    assert first.reps == {"REP-1"}
    assert first.distributors == {"D1"}
    assert places["O1"].channel == "grocery"
    for _ in range(5):
        again, again_places = await _read(cache, conn)
        assert (again, again_places) == (first, places)
    assert cache.reads == 1

    # The reference consumer's way: apply_reference_events in a transaction of its own.
    async with conn.transaction():
        await apply_reference_events(conn, [parse_event(_moved("O1", "D2", 1))])
    await _changes_within_bound(cache, conn, "O1", "D2")
    known, places = await _read(cache, conn)
    assert places["O1"].channel == "pharmacy"
    assert known.outlet_distributor["O3"] == "D2"

    # Any other writer (a fix by hand) is seen alike: the triggers notify, not the consumer.
    await conn.execute("UPDATE known_outlets SET distributor_id = 'D3' WHERE outlet_id = 'O3'")
    await _changes_within_bound(cache, conn, "O3", "D3")
    await conn.execute("DELETE FROM known_reps WHERE rep_id = 'REP-1'")
    deadline = time.monotonic() + STALENESS_BOUND_S
    while (await _read(cache, conn))[0].reps:
        assert time.monotonic() < deadline, "a removed rep is still known"
        await asyncio.sleep(0.005)


async def test_a_master_registered_later_is_known_within_the_bound_from_the_whole_copy(
    database: str, conn: asyncpg.Connection, listening: list[asyncio.Task[None]]
) -> None:
    cache = MastersCache(SCHEMA)
    await _live(cache, database, listening)
    refs = References(outlets={"O1", "O-NEW"})
    for _ in range(3):
        assert (await _read(cache, conn, refs))[0].outlet_distributor == {"O1": "D1"}
    assert cache.reads == 1  # the whole copy: O-NEW is unknown without asking

    async with conn.transaction():
        await apply_reference_events(conn, [parse_event(_moved("O-NEW", "D3", 2))])
    await _changes_within_bound(cache, conn, "O-NEW", "D3")
    assert (await _read(cache, conn, refs))[0].outlet_distributor == {"O1": "D1", "O-NEW": "D3"}


async def test_beyond_the_whole_copys_size_masters_are_read_by_id_and_unknown_ones_each_time(
    database: str, conn: asyncpg.Connection, listening: list[asyncio.Task[None]]
) -> None:
    cache = MastersCache(SCHEMA, whole_copy_max_rows=3)  # the test brand has more masters
    await _live(cache, database, listening)
    assert (await _read(cache, conn, References(outlets={"O1"})))[0].outlet_distributor == {"O1": "D1"}
    assert cache.reads == 2  # the whole copy tried once, then by id
    cache.reads = 0
    refs = References(outlets={"O1", "O-NEW"})
    assert (await _read(cache, conn, refs))[0].outlet_distributor == {"O1": "D1"}
    assert (await _read(cache, conn, refs))[0].outlet_distributor == {"O1": "D1"}
    assert cache.reads == 2  # the unknown outlet, asked for again
    await conn.execute("SELECT pg_notify('order_capture_masters', 'another_schema')")
    await asyncio.sleep(0.2)
    await _read(cache, conn, References(outlets={"O1"}))
    assert cache.reads == 2  # O1 still held


async def test_without_a_listening_connection_every_batch_reads_postgresql(
    database: str, conn: asyncpg.Connection, listening: list[asyncio.Task[None]]
) -> None:
    cache = MastersCache(SCHEMA)
    await _read(cache, conn)
    await _read(cache, conn)
    assert cache.reads == 2  # never listened: not used

    await _live(cache, database, listening)
    await _read(cache, conn)
    await _read(cache, conn)
    assert cache.reads == 3
    # The listening connection is lost: notifications may be missed from then on, so the copy goes out of use.
    terminated = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", LISTENER_NAME
    )
    assert terminated == 1
    deadline = time.monotonic() + 10
    while cache.live:
        assert time.monotonic() < deadline, "the cache did not notice its connection was lost"
        await asyncio.sleep(0.01)
    await asyncio.gather(listening[0], return_exceptions=True)  # the job ends; the service's supervisor restarts it
    await conn.execute("UPDATE known_outlets SET distributor_id = 'D3' WHERE outlet_id = 'O1'")
    assert (await _read(cache, conn))[0].outlet_distributor["O1"] == "D3"
    assert cache.reads == 4


async def test_a_posting_reps_territory_is_read_once_and_its_change_seen_within_the_bound(
    database: str, conn: asyncpg.Connection, listening: list[asyncio.Task[None]]
) -> None:
    cache = MastersCache(SCHEMA)
    await _live(cache, database, listening)

    async def connection() -> asyncpg.Connection:
        return conn

    first = await cache.rep_territory(connection, "REP-1")
    assert first == RepTerritory(frozenset({"D1"}), frozenset())
    assert await cache.rep_territory(connection, "REP-1") == first
    assert await cache.rep_territory(connection, "REP-UNKNOWN") is None
    assert await cache.rep_territory(connection, "REP-UNKNOWN") is None
    assert cache.reads == 3  # REP-1 once; the unknown rep each time

    moved = rep_with_territory("REP-1", "D2", also_covers=("D3",), beat_ids=("B-7",))
    moved["occurred_at"] = MASTERS_TIME.replace(minute=5).isoformat()
    async with conn.transaction():
        await apply_reference_events(conn, [parse_event(moved)])
    wanted = RepTerritory(frozenset({"D2", "D3"}), frozenset({"B-7"}))
    deadline = time.monotonic() + STALENESS_BOUND_S
    while await cache.rep_territory(connection, "REP-1") != wanted:
        assert time.monotonic() < deadline, "the rep's old territory is still used"
        await asyncio.sleep(0.005)
