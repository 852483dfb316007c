"""The session's PostgreSQL is initialised as the embedded default and deploy/compose.yaml initialise theirs:
text compared bytewise (collation "C"), because every id is text and any other locale compares through strcoll
(index builds and sorts ~1.5-2x slower). Character classes (upper/lower, ILIKE) still follow the environment's
locale, as before."""

import asyncpg


async def test_databases_compare_ids_bytewise(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        collation = await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        created = await conn.fetchval("SELECT datcollate FROM pg_database WHERE datname = 'template1'")
        # Byte order puts upper case before lower case; a locale's collation would not.
        ordered = await conn.fetch("SELECT v FROM unnest(ARRAY['b', 'B', 'a', 'A']) AS v ORDER BY v")
    finally:
        await conn.close()
    assert collation == "C"
    assert created == "C"  # databases made later by CREATE DATABASE (one per test module, the bench's) inherit it
    assert [row["v"] for row in ordered] == ["A", "B", "a", "b"]
