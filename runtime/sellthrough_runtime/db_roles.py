"""One PostgreSQL login role per service, owning its own schema and nothing else.

Run as an administrator (the database owner, or a role with CREATEROLE that owns the database) before the
services start: a compose one-shot service and a Helm hook Job do. Idempotent: a second run changes nothing but
the passwords it is given (so it also rotates them), and a schema that already exists (a deployment where every
service used one shared role) is handed over to its service's role with everything in it.

What each service role can do:
- LOGIN, nothing more: no superuser, no CREATEDB, no CREATEROLE, no role inheritance.
- Own its schema, so its migrations create and alter tables there as that role.
- Nothing on another service's schema (no USAGE: even the names are hidden), no CREATE on the database (no new
  schemas) and none on `public`.
- The readers of the token store (order-capture and query-api, `--auth-reader`) get USAGE on schema `auth` and
  SELECT on its tables, present and future ones created by the role running this (the migrator): read-only.
"""

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
import typer
from psycopg import sql

AUTH_SCHEMA = "auth"
"""The token store's schema: owned by the administrator who migrates it, read by the authenticating services."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_LOCK = "sellthrough-db-roles"

# Relations of a schema and the statement that hands one over. Sequences owned by a column follow their table.
_RELATIONS = sql.SQL(
    "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
    "AND d.deptype IN ('a', 'i'))"
)
_KIND_KEYWORD = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "S": "SEQUENCE",
    "f": "FOREIGN TABLE",
}
_FUNCTIONS = sql.SQL(
    "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s"
)
_TYPES = sql.SQL(
    "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = %s "
    "AND t.typtype IN ('e', 'd') "  # enums and domains; composite types belong to their tables
)


@dataclass(frozen=True)
class ServiceRole:
    """A service's login role; it owns the schema of the same name."""

    name: str
    password: str
    reads_auth: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"{self.name!r}: a role and schema name is lower case letters, digits and _")
        if not self.password:
            raise ValueError(f"{self.name}: no password")


def password_variable(name: str) -> str:
    """Where the CLI reads the password of role `name`: SELLTHROUGH_DB_PASSWORD_<NAME>."""
    return f"SELLTHROUGH_DB_PASSWORD_{name.upper()}"


def apply_roles(admin_url: str, roles: Sequence[ServiceRole]) -> None:
    """Create or update every role, its schema and the token store grants, in one transaction."""
    with psycopg.connect(admin_url) as conn, conn.transaction():
        # Two runs at once (a retried Job) would both try CREATE ROLE.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_LOCK])
        database = sql.Identifier(str(conn.execute("SELECT current_database()").fetchone()[0]))  # type: ignore[index]
        # PostgreSQL 15's default, applied to older servers too: nobody creates objects in `public`.
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(AUTH_SCHEMA)))
        for role in roles:
            _login_role(conn, role)
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, sql.Identifier(role.name)))
            _own_schema(conn, role.name)
            _auth_access(conn, role)


def _login_role(conn: psycopg.Connection, role: ServiceRole) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role.name]).fetchone()
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    conn.execute(
        sql.SQL("{} {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION PASSWORD {}").format(
            verb, sql.Identifier(role.name), sql.Literal(role.password)
        )
    )


def _own_schema(conn: psycopg.Connection, name: str) -> None:
    """The schema and everything already in it belong to the role (an earlier shared-role deployment's tables
    included), and nobody else has rights on it."""
    schema, owner = sql.Identifier(name), sql.Identifier(name)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, owner))
    conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, owner))
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
    for relation, kind in conn.execute(_RELATIONS, [name]).fetchall():
        conn.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(_KIND_KEYWORD[kind]), schema, sql.Identifier(relation), owner
            )
        )
    for (signature,) in conn.execute(_FUNCTIONS, [name]).fetchall():
        # regprocedure text is already a qualified, quoted signature such as query_api.stock_node(text,date).
        conn.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), owner))
    for (type_name,) in conn.execute(_TYPES, [name]).fetchall():
        conn.execute(sql.SQL("ALTER TYPE {}.{} OWNER TO {}").format(schema, sql.Identifier(type_name), owner))


def _auth_access(conn: psycopg.Connection, role: ServiceRole) -> None:
    auth, grantee = sql.Identifier(AUTH_SCHEMA), sql.Identifier(role.name)
    if role.reads_auth:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(auth, grantee))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(auth, grantee))
        # Tables the migrator (whoever runs this) creates there later are readable too.
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(auth, grantee)
        )
    else:
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(auth, grantee))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(auth, grantee))
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE ALL ON TABLES FROM {}").format(auth, grantee)
        )


app = typer.Typer(
    help="Create or update one PostgreSQL login role per service, owning only its schema. Idempotent.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.command()
def main(
    roles: list[str] = typer.Argument(..., help="Service schemas, e.g. order_capture query_api; each gets a role."),
    auth_reader: list[str] = typer.Option(
        [], "--auth-reader", help="A role that may read the token store (schema auth); repeat for several."
    ),
) -> None:
    """Connects with DATABASE_URL (an administrator); reads each role's password from
    SELLTHROUGH_DB_PASSWORD_<ROLE> (e.g. SELLTHROUGH_DB_PASSWORD_ORDER_CAPTURE)."""
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        raise typer.BadParameter("DATABASE_URL (an administrator's connection) is not set")
    unknown = set(auth_reader) - set(roles)
    if unknown:
        raise typer.BadParameter(f"not among the roles: {sorted(unknown)}", param_hint="--auth-reader")
    missing = [password_variable(name) for name in roles if not os.environ.get(password_variable(name))]
    if missing:
        raise typer.BadParameter(f"no password: set {', '.join(missing)}")
    specs = [ServiceRole(name, os.environ[password_variable(name)], name in auth_reader) for name in roles]
    apply_roles(admin_url, specs)
    typer.echo(f"roles ready: {', '.join(roles)} (token store readers: {', '.join(auth_reader) or 'none'})")
