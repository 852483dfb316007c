"""Each service connects to PostgreSQL as its own role (sellthrough_runtime.db_roles): its migrations run as
that role, the service works, and the role cannot read, or even see, another service's tables, cannot create
schemas, and reads the token store (schema `auth`) only if it authenticates callers, and only reads it."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
import pytest
from typer.testing import CliRunner

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.processes import free_port
from sellthrough_devstack.services import ServiceProcess
from sellthrough_runtime.db import migrate
from sellthrough_runtime.db_roles import ServiceRole, apply_roles, password_variable
from sellthrough_runtime.db_roles import app as roles_app
from sellthrough_runtime.token_store import AUTH_MIGRATIONS
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import order, reference_events

pytestmark = pytest.mark.e2e

ROLES = {
    "order-capture": ServiceRole("order_capture", "oc-initial", reads_auth=True),
    "stock-ledger": ServiceRole("stock_ledger", "sl-initial"),
    "scheme-engine": ServiceRole("scheme_engine", "se-initial"),
    "query-api": ServiceRole("query_api", "qa-initial", reads_auth=True),
}
OWN_TABLE = {role.name: f"CREATE TABLE IF NOT EXISTS {role.name}.own_rows (id int)" for role in ROLES.values()}
READ_OWN_TABLE = {role.name: f"SELECT count(*) FROM {role.name}.own_rows" for role in ROLES.values()}
TODAY = datetime.now(UTC).date()
RANGE = {"from": str(TODAY - timedelta(days=7)), "to": str(TODAY + timedelta(days=1))}


def as_role(database_url: str, role: ServiceRole) -> str:
    parts = urlsplit(database_url)
    netloc = f"{role.name}:{role.password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


SEEDED_HASH = "a" * 64


@pytest.fixture(scope="module")
def auth_migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the token store's migrations (schema auth), which the administrator applies; a copy so that a
    test can add a pending one beside them."""
    directory = tmp_path_factory.mktemp("auth-migrations")
    for migration in AUTH_MIGRATIONS.glob("*.sql"):
        (directory / migration.name).write_text(migration.read_text())
    return directory


@pytest.fixture(scope="module")
def roles_applied(infra: Infra, auth_migrations: Path) -> Infra:
    async def before() -> None:
        async with connected(infra.database_url) as admin:
            # What a deployment that ran every service as one role left behind.
            await admin.execute("CREATE SCHEMA stock_ledger")
            await admin.execute("CREATE TABLE stock_ledger.legacy_rows (id int GENERATED ALWAYS AS IDENTITY)")
        await migrate(infra.database_url, "auth", auth_migrations, runtime_tables=False)
        async with connected(infra.database_url) as admin:
            await admin.execute(
                "INSERT INTO auth.tokens (hash, role, subject) VALUES ($1, 'admin', 'seeded')", SEEDED_HASH
            )

    asyncio.run(before())
    apply_roles(infra.database_url, list(ROLES.values()))
    apply_roles(infra.database_url, list(ROLES.values()))  # idempotent
    return infra


@contextlib.contextmanager
def services_as_their_roles(infra: Infra, tokens: Tokens, names: list[str]) -> Iterator[dict[str, ServiceProcess]]:
    running: dict[str, ServiceProcess] = {}
    try:
        for name in names:
            env = {
                "DATABASE_URL": as_role(infra.database_url, ROLES[name]),
                "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
                "SELLTHROUGH_TOKENS_FILE": str(tokens.file),
            }
            running[name] = ServiceProcess(name, free_port(), env, infra.work_dir / f"{name}-as-role.log")
            running[name].start()
        yield running
    finally:
        for service in running.values():
            service.stop()


def test_services_migrate_and_work_as_their_own_roles(roles_applied: Infra, tokens: Tokens) -> None:
    infra = roles_applied
    with services_as_their_roles(infra, tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, tokens)
        api.post(reference_events())
        wait_for_masters(running["order-capture"].url, tokens.issued["admin"].token, reference_events())
        api.post([order("O2", [("S2", 4)])])

        def projected() -> bool:
            rows = {row["id"]: row["units"] for row in api.get("/v1/sales", level="outlet", **RANGE)["rows"]}
            return rows.get("O2") == 4

        api.wait(projected, "an order captured and projected by services on their own roles")

    async def owners() -> dict[str, set[str]]:
        async with connected(infra.database_url) as admin:
            rows = await admin.fetch(
                "SELECT schemaname, tableowner FROM pg_tables WHERE schemaname = ANY($1::text[])",
                ["order_capture", "query_api", "stock_ledger"],
            )
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row["schemaname"], set()).add(row["tableowner"])
        return found

    # The migrations ran as the service's role; the shared-role leftover was handed over.
    assert asyncio.run(owners()) == {
        "order_capture": {"order_capture"},
        "query_api": {"query_api"},
        "stock_ledger": {"stock_ledger"},
    }


async def test_a_role_cannot_reach_another_services_schema(roles_applied: Infra) -> None:
    url = roles_applied.database_url
    async with connected(url) as admin:
        # Whatever the order of the tests in this module, the schemas exist with a table each.
        for role in ROLES.values():
            async with connected(as_role(url, role)) as conn:
                await conn.execute(OWN_TABLE[role.name])
        assert await admin.fetchval("SELECT count(*) FROM pg_tables WHERE tablename = 'own_rows'") == len(ROLES)
    async with connected(as_role(url, ROLES["query-api"])) as query_api:
        assert await query_api.fetchval(READ_OWN_TABLE["query_api"]) == 0, "control: its own schema"
        for other in ("order_capture", "stock_ledger", "scheme_engine"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=f"permission denied for schema {other}"):
                await query_api.fetch(READ_OWN_TABLE[other])
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query_api.execute("CREATE SCHEMA sneaky")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query_api.execute("CREATE TABLE public.sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query_api.execute("DROP SCHEMA order_capture CASCADE")


async def test_only_authenticating_services_read_the_token_store_and_only_read(roles_applied: Infra) -> None:
    url = roles_applied.database_url
    async with connected(url) as admin:
        # A table the token store's migrations add later: default privileges make it readable too.
        await admin.execute("CREATE TABLE IF NOT EXISTS auth.later (id int)")
    for name in ("order-capture", "query-api"):
        async with connected(as_role(url, ROLES[name])) as reader:
            assert await reader.fetchval("SELECT hash FROM auth.tokens") == SEEDED_HASH
            assert await reader.fetchval("SELECT count(*) FROM auth.later") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute(
                    "INSERT INTO auth.tokens (hash, role, subject) VALUES ($1, 'admin', 'me')", "b" * 64
                )
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute("UPDATE auth.tokens SET hash = 'x'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute("CREATE TABLE auth.mine (id int)")
    for name in ("stock-ledger", "scheme-engine"):
        async with connected(as_role(url, ROLES[name])) as other:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema auth"):
                await other.fetch("SELECT * FROM auth.tokens")


def test_a_reader_of_the_token_store_passes_its_migration_step_without_writing(
    roles_applied: Infra, auth_migrations: Path
) -> None:
    """A service that authenticates migrates the token store's schema at start, as the administrator did: with
    every migration applied that step only reads, so a read-only role gets through it (and writes nothing)."""
    url = roles_applied.database_url

    def migrate_as(service: str, directory: Path) -> int:
        return asyncio.run(migrate(as_role(url, ROLES[service]), "auth", directory, runtime_tables=False))

    assert migrate_as("query-api", auth_migrations) == 0
    assert migrate_as("order-capture", auth_migrations) == 0
    with pytest.raises(psycopg.Error):  # no rights on auth at all
        migrate_as("stock-ledger", auth_migrations)
    # A migration still pending needs the owner: the reader is refused rather than half-applying it.
    pending = auth_migrations.parent / "auth-migrations-pending"
    pending.mkdir(exist_ok=True)
    for migration in auth_migrations.iterdir():
        (pending / migration.name).write_text(migration.read_text())
    (pending / "0002.more.sql").write_text("CREATE TABLE more_rows (id int);\n")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        migrate_as("query-api", pending)

    async def more_rows() -> object:
        async with connected(url) as admin:
            return await admin.fetchval("SELECT to_regclass('auth.more_rows')")

    assert asyncio.run(more_rows()) is None


def test_a_second_run_rotates_passwords_and_changes_nothing_else(roles_applied: Infra) -> None:
    async def state() -> tuple[dict[str, str], list[str]]:
        async with connected(roles_applied.database_url) as admin:
            passwords = {
                r["rolname"]: r["rolpassword"]
                for r in await admin.fetch(
                    "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1::text[])",
                    [role.name for role in ROLES.values()],
                )
            }
            grants = await admin.fetch(
                "SELECT nspname, nspowner::regrole::text AS owner, nspacl::text AS acl FROM pg_namespace "
                "WHERE nspname = ANY($1::text[]) ORDER BY nspname",
                [*(role.name for role in ROLES.values()), "auth"],
            )
        return passwords, [f"{g['nspname']} {g['owner']} {g['acl']}" for g in grants]

    before_passwords, before_grants = asyncio.run(state())
    rotated = [ServiceRole(r.name, r.password + "-rotated", r.reads_auth) for r in ROLES.values()]
    apply_roles(roles_applied.database_url, rotated)
    after_passwords, after_grants = asyncio.run(state())
    assert after_grants == before_grants
    assert all(after_passwords[name] != before_passwords[name] for name in before_passwords)
    apply_roles(roles_applied.database_url, list(ROLES.values()))


def test_login_roles_have_no_other_powers(roles_applied: Infra) -> None:
    async def attributes() -> list[asyncpg.Record]:
        async with connected(roles_applied.database_url) as admin:
            return list(
                await admin.fetch(
                    "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit FROM pg_roles "
                    "WHERE rolname = ANY($1::text[])",
                    [role.name for role in ROLES.values()],
                )
            )

    rows = asyncio.run(attributes())
    assert len(rows) == len(ROLES)
    for row in rows:
        assert row["rolcanlogin"], row["rolname"]
        for power in ("rolsuper", "rolcreatedb", "rolcreaterole", "rolinherit"):
            assert not row[power], (row["rolname"], power)


def test_the_command_line_reads_the_variables_compose_and_helm_pass(roles_applied: Infra) -> None:
    arguments = [role.name for role in ROLES.values()] + [
        "--auth-reader",
        "order_capture",
        "--auth-reader",
        "query_api",
    ]
    passwords = {password_variable(role.name): role.password for role in ROLES.values()}
    env = {"DATABASE_URL": roles_applied.database_url, **passwords}
    result = CliRunner().invoke(roles_app, arguments, env=env)
    assert result.exit_code == 0, result.output
    assert "roles ready: order_capture, stock_ledger, scheme_engine, query_api" in result.output

    missing = CliRunner().invoke(roles_app, arguments, env={**env, "SELLTHROUGH_DB_PASSWORD_QUERY_API": ""})
    assert missing.exit_code == 2
    assert "SELLTHROUGH_DB_PASSWORD_QUERY_API" in missing.output
    stranger = CliRunner().invoke(roles_app, ["query_api", "--auth-reader", "stock_ledger"], env=env)
    assert stranger.exit_code == 2
    assert "not among the roles" in stranger.output
    no_admin = CliRunner().invoke(roles_app, arguments, env={**env, "DATABASE_URL": ""})
    assert no_admin.exit_code == 2
    assert "DATABASE_URL" in no_admin.output
