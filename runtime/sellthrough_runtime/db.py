"""PostgreSQL: the connection pool each service uses, and its schema migrations.

Migrations are plain SQL files applied by yoyo-migrations into the service's own schema; yoyo's lock
table makes two instances starting at once safe.
"""

import asyncio
import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


RUNTIME_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def create_pool(database_url: str, schema: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see only `schema` (plus pg_catalog), so SQL names tables unqualified."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings={"search_path": schema, "application_name": f"sellthrough-{schema}"},
        command_timeout=60,
    )
    assert pool is not None
    return pool


def _yoyo_url(database_url: str, schema: str) -> str:
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    query["schema"] = schema
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), parts.fragment))


def _migrate_blocking(database_url: str, schema: str, migrations_dir: Path) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    backend = get_backend(_yoyo_url(database_url, schema), migration_table="_yoyo_migration")
    migrations = read_migrations(str(RUNTIME_MIGRATIONS), str(migrations_dir))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    backend.connection.close()
    return len(pending)


async def migrate(database_url: str, schema: str, migrations_dir: Path) -> int:
    """Create `schema`, then apply the runtime's tables (outbox, offsets, dead letters) and the SQL files in
    `migrations_dir`; returns how many migrations ran."""
    applied = await asyncio.to_thread(_migrate_blocking, database_url, schema, migrations_dir)
    log.info("migrations applied", extra={"schema": schema, "applied": applied})
    return applied
