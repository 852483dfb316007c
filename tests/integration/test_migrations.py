"""Schema migrations when several processes of a service start at once (replicas, order-capture's workers)."""

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg
import pytest

import order_capture
from sellthrough_runtime.db import _migrate_blocking
from tests.conftest import Infra

MIGRATIONS = Path(order_capture.__file__).parent / "migrations"
PROCESSES = 3


def _migrate_at(database_url: str, schema: str, start_at: float) -> int:
    while time.time() < start_at:  # all processes start their migration within a millisecond or so
        pass
    return _migrate_blocking(database_url, schema, MIGRATIONS)


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(time.sleep, [0] * PROCESSES))  # started and imported before the first attempt
        yield pool


def test_processes_starting_at_once_on_a_fresh_database_all_migrate(
    infra: Infra, processes: ProcessPoolExecutor
) -> None:
    """Unserialised, sessions creating the same schema (or yoyo's tables) at the same moment fail about one
    time in six with a unique violation; every attempt here must succeed, the migrations applied once."""
    for attempt in range(12):
        schema = f"migrate_race_{attempt}"
        start_at = time.time() + 0.2
        runs = [processes.submit(_migrate_at, infra.database_url, schema, start_at) for _ in range(PROCESSES)]
        applied = sorted(run.result(timeout=60) for run in runs)
        assert applied[0] == applied[1] == 0, applied
        assert applied[-1] > 0, applied
        with psycopg.connect(infra.database_url) as conn:
            (tables,) = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                [schema, "idempotency_keys"],
            ).fetchone() or (0,)
        assert tables == 1


def test_a_process_killed_while_migrating_does_not_block_the_next_start(infra: Infra) -> None:
    """A worker killed mid-migration (kill -9 during start-up, OOM) leaves yoyo's lock row committed behind it;
    the advisory lock died with its session, so the next process must not wait on that row and fail."""
    schema = "migrate_after_kill"
    _migrate_blocking(infra.database_url, schema, MIGRATIONS)
    with psycopg.connect(infra.database_url, autocommit=True) as conn:  # what the killed process left behind
        conn.execute(f'INSERT INTO "{schema}".yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)')
    started = time.monotonic()
    assert _migrate_blocking(infra.database_url, schema, MIGRATIONS) == 0
    assert time.monotonic() - started < 5, "waited for a lock nobody holds"
