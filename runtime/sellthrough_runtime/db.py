"""PostgreSQL: the connection pool each service uses, and its schema migrations.

Migrations are plain SQL files applied by yoyo-migrations into the service's own schema; a session advisory
lock per schema makes processes starting at once (replicas, workers) apply them one after the other.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
import psycopg
from psycopg import sql
from yoyo import get_backend, internalmigrations, read_migrations
from yoyo.backends.base import DatabaseBackend
from yoyo.migrations import MigrationList

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


RUNTIME_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _exact(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)  # the exact decimal, cast to numeric by the statement
    raise TypeError(f"{type(value).__name__} is not a JSON row value")


def json_rows(rows: Iterable[Sequence[object]]) -> str:
    """Many rows as one statement parameter: a JSON array of arrays, for a statement that reads them with
    `jsonb_array_elements($1::text::jsonb) AS r` and casts each field, e.g. `(r->>0)::date, (r->>3)::numeric`.

    asyncpg encodes an array parameter element by element in Python (0.4-2 us each, Decimals the dearest);
    this is one orjson call (~0.3 us per row), and Postgres parses it in ~1-2 us per row more than it takes to
    read the arrays. Dates are ISO 8601 and Decimals their exact strings, so the casts are exact."""
    return orjson.dumps(rows if isinstance(rows, list) else list(rows), default=_exact).decode()


class FailFastPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type hints
    """An asyncpg pool whose `acquire()` gives up after `acquire_timeout` instead of waiting forever (asyncpg's
    default): with the database hung or every connection stuck, a request answers 503 in seconds rather than
    hanging until the client gives up. The TimeoutError it raises is one of the errors answered with 503."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self._default_acquire_timeout if timeout is None else timeout)


async def create_pool(
    database_url: str,
    schema: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    connect_timeout: float = 5.0,
    acquire_timeout: float = 10.0,
    command_timeout: float = 60.0,
    server_settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """A pool whose connections see only `schema` (plus pg_catalog), so SQL names tables unqualified.

    After a database outage the pool recovers by itself: a connection the server closed is marked closed and
    reopened on its next acquire, and one found dead mid-query raises (answered 503) and is replaced.
    """
    # Built as asyncpg.create_pool builds its Pool (the same defaults), only with the fail-fast acquire.
    pool = FailFastPool(
        database_url,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={"search_path": schema, "application_name": f"sellthrough-{schema}", **(server_settings or {})},
        command_timeout=command_timeout,
        timeout=connect_timeout,
    )
    await pool
    return pool


def _yoyo_url(database_url: str, schema: str) -> str:
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    query["schema"] = schema
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), parts.fragment))


def _migrate_blocking(database_url: str, schema: str, migrations_dir: Path, runtime_tables: bool = True) -> int:
    # Processes starting at once (replicas, a service's workers) take turns for the whole migration, held by this
    # session: CREATE SCHEMA IF NOT EXISTS, and the CREATE TABLE IF NOT EXISTS of yoyo's own tables before its
    # lock exists, fail with a unique violation when two sessions run them concurrently on a fresh database.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", [f"sellthrough-migrate:{schema}"])
        # Only if missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists,
        # which a service's own role (sellthrough_runtime.db_roles) does not have; it owns its schema instead.
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is None:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        backend = get_backend(_yoyo_url(database_url, schema), migration_table="_yoyo_migration")
        directories = [str(RUNTIME_MIGRATIONS)] if runtime_tables else []
        migrations = read_migrations(*directories, str(migrations_dir))
        if _up_to_date(backend, migrations):
            # Nothing written: a role with only read access to a schema someone else migrates (the token store,
            # sellthrough_runtime.db_roles) passes here, as every start after the first does.
            backend.connection.close()
            return 0
        # yoyo's lock is a committed row: a process killed while migrating leaves it behind, and every later
        # start would wait 10 s for it and fail. Whoever wrote a row there held this advisory lock, which ended
        # with its session: a row found now is such a leftover.
        backend.break_lock()
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        backend.connection.close()
    return len(pending)


def _up_to_date(backend: DatabaseBackend, migrations: MigrationList) -> bool:
    """Every migration applied, found with reads only (yoyo's own tables exist and are current)."""
    return not internalmigrations.needs_upgrading(backend) and not backend.to_apply(migrations)


async def migrate(database_url: str, schema: str, migrations_dir: Path, *, runtime_tables: bool = True) -> int:
    """Create `schema`, then apply the runtime's tables (outbox, offsets, dead letters; a schema that is not a
    service's, such as `auth`, passes `runtime_tables=False`) and the SQL files in `migrations_dir`; returns how
    many migrations ran."""
    applied = await asyncio.to_thread(_migrate_blocking, database_url, schema, migrations_dir, runtime_tables)
    log.info("migrations applied", extra={"schema": schema, "applied": applied})
    return applied
