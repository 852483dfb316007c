"""Region outlines through query-api's real projection (the dimensions' batch applier on PostgreSQL): stored from
GeographyDefined v2, a later definition wins (one without an outline clears it), a v1 record (before outlines) is
upcast rather than dead-lettered, and the map's read finds them by scope."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import query_api
from query_api.main import SCHEMA
from query_api.projections.dimensions import DIMENSIONS
from query_api.projections.handler import projection_handler
from query_api.reads.outlines import outlet_positions, regions_in_scope
from query_api.settings import QueryApiSettings
from sellthrough_contracts import type_names
from sellthrough_runtime.applier import BatchApplier
from tests.conftest import Infra
from tests.support.brand import event
from tests.support.replay import as_records, pool_on_own_loop

MIGRATIONS = Path(query_api.__file__).parent / "migrations"
AT = datetime(2026, 6, 1, tzinfo=UTC)
DELHI = [[76.9, 28.3], [77.5, 28.3], [77.6, 28.9], [76.9, 28.9], [76.9, 28.3]]
SMALLER = [[77.0, 28.4], [77.4, 28.4], [77.4, 28.8], [77.0, 28.4]]


def region(geo_id: str, minutes: int, outline: list[list[list[float]]] | None = None) -> dict[str, Any]:
    payload = {"geo_id": geo_id, "level": "region", "name": f"Region {geo_id}", "parent_id": "Z1"}
    return event(
        "GeographyDefined",
        payload | ({"outline": outline} if outline else {}),
        occurred_at=AT + timedelta(minutes=minutes),
    )


def outlet(outlet_id: str, distributor: str, lat: float, lon: float) -> dict[str, Any]:
    payload = {
        "outlet_id": outlet_id,
        "name": f"Shop {outlet_id}",
        "distributor_id": distributor,
        "channel": "grocery",
        "outlet_class": "A",
        "location": {"lat": lat, "lon": lon, "accuracy_m": 5},
    }
    return event("OutletRegistered", payload, occurred_at=AT)


@pytest.fixture(scope="module")
def loop_and_pool(infra: Infra) -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Pool]]:
    with pool_on_own_loop(infra.database_url, SCHEMA, MIGRATIONS) as loop_and_pool:
        yield loop_and_pool


def test_outlines_follow_the_latest_definition_and_the_maps_scope(
    loop_and_pool: tuple[asyncio.AbstractEventLoop, asyncpg.Pool],
) -> None:
    loop, pool = loop_and_pool
    group_id = f"outlines-{uuid.uuid4().hex[:8]}"
    applier = BatchApplier(
        pool=pool,
        group_id=group_id,
        handler=projection_handler(QueryApiSettings()),
        wanted_types=type_names(DIMENSIONS.consumes),
    )
    # A record of version 1, as written before outlines existed.
    old_r2 = region("R2", 0) | {"schema_version": 1}
    batches = [
        [
            event("GeographyDefined", {"geo_id": "Z1", "level": "zone", "name": "North", "parent_id": None}),
            region("R1", 10, [DELHI]),
            old_r2,
            region("R3", 0, [SMALLER]),
            event("DistributorRegistered", {"distributor_id": "D1", "name": "D1", "region_id": "R1"}),
            event("DistributorRegistered", {"distributor_id": "D2", "name": "D2", "region_id": "R2"}),
            outlet("O1", "D1", 28.6, 77.2),
            outlet("O2", "D2", 30.9, 75.8),
            outlet("O3", "D2", 31.0, 75.9),
            outlet("O4", "D2", 30.8, 76.0),
        ],
        [region("R1", 5, [SMALLER])],  # older than the stored definition: ignored
        [region("R3", 20)],  # newer and without an outline: clears it
    ]

    async def run() -> dict[str, Any]:
        await pool.execute("TRUNCATE geo_outlines, zones, regions, distributors, outlets")
        for i, batch in enumerate(batches):
            await applier.apply_batch(as_records(batch, i * 100))
        async with pool.acquire() as conn:
            return {
                "stored": {
                    r["geo_id"]: r["outline"] for r in await conn.fetch("SELECT geo_id, outline FROM geo_outlines")
                },
                "dead": await conn.fetchval("SELECT count(*) FROM dead_letters WHERE group_id = $1", group_id),
                "national": await regions_in_scope(conn, None, None),
                "under_d2": await regions_in_scope(conn, "D2", None),
                "d1_only": await regions_in_scope(conn, None, ["D1"]),
                "positions": await outlet_positions(conn, ["R2"], None),
            }

    found = loop.run_until_complete(run())
    assert found["dead"] == 0
    expected: dict[str, Any] = {"Z1": None, "R1": [DELHI], "R2": None, "R3": None}
    assert found["stored"] == expected
    national = {r.id: r.outline for r in found["national"]}
    assert national == {"R1": [[tuple(p) for p in DELHI]], "R2": None, "R3": None}
    assert [r.id for r in found["under_d2"]] == ["R2"]
    assert [r.id for r in found["d1_only"]] == ["R1"]  # a territory sees only its regions
    assert sorted(found["positions"]["R2"]) == [(75.8, 30.9), (75.9, 31.0), (76.0, 30.8)]
