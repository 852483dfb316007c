"""A projection's lag behind the end of the topics that feed it, read from what its consumer stored."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from query_api.reads.freshness import read_freshness
from sellthrough_runtime.db import migrate
from tests.conftest import Infra

SCHEMA = "freshness_test"


@pytest.fixture
async def conn(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[asyncpg.Connection]:
    projections = tmp_path_factory.mktemp("migrations")
    (projections / "0001.freshness.sql").write_text(
        "CREATE TABLE projection_freshness (projection text PRIMARY KEY, newest_occurred_at timestamptz,"
        " newest_recorded_at timestamptz);"
    )
    await migrate(infra.database_url, SCHEMA, projections)
    connection = await asyncpg.connect(infra.database_url, server_settings={"search_path": SCHEMA})
    await connection.execute("TRUNCATE consumer_offsets, projection_freshness")
    yield connection
    await connection.close()


async def test_lag_sums_unapplied_records_on_the_feeding_topics_only(conn: asyncpg.Connection) -> None:
    await conn.executemany(
        "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset, end_offset) VALUES ($1,$2,$3,$4,$5)",
        [
            ("g", "trade", 0, 5, 12),  # 7 behind
            ("g", "trade", 1, 3, 3),  # caught up
            ("g", "trade", 2, 9, None),  # stored before end offsets were recorded: not measured
            ("g", "stock", 0, 0, 100),  # another topic: not this projection's lag
        ],
    )
    newest = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    await conn.execute("INSERT INTO projection_freshness VALUES ('sales_daily', $1, $1)", newest)

    freshness = await read_freshness(conn, "sales_daily", ["trade"])

    assert freshness.lag_events == 7
    assert freshness.lag_measured_at is not None
    assert freshness.newest_occurred_at == newest


async def test_a_projection_nothing_has_reached_reports_unknown_not_zero(conn: asyncpg.Connection) -> None:
    freshness = await read_freshness(conn, "sales_daily", ["trade"])

    assert (freshness.lag_events, freshness.lag_measured_at, freshness.newest_occurred_at) == (None, None, None)
