"""`sellthrough-tokens`: issue, list, revoke and rotate the API tokens in the token store (DATABASE_URL).

A token is printed once, when issued (alone on stdout, so scripts can capture it; what it is goes to stderr),
and never again: the store keeps only its hash. Running services see a revocation or rotation within
SELLTHROUGH_TOKEN_REFRESH_SECONDS, and a new token at once.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
import psycopg
import typer
from rich.console import Console
from rich.table import Table

from sellthrough_runtime.auth import Role
from sellthrough_runtime.token_store import (
    IssuedToken,
    StoredToken,
    TokenNotFound,
    TokenNotRotatable,
    TokenScope,
    bootstrap_admin,
    issue_token,
    list_tokens,
    migrate_auth,
    revoke_token,
    rotate_token,
)

T = TypeVar("T")

console = Console(stderr=True)
"""Everything but the token itself: stdout carries only the secret (issue, rotate, bootstrap) or the listing."""
out = Console(soft_wrap=True)

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
DATABASE_URL = typer.Option(..., "--database-url", envvar="DATABASE_URL", help="PostgreSQL URL of the token store.")


class CliError(Exception):
    """A clear message for the operator; exit status 1."""


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `10m`, `30s`, `2w` as a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use a number and one of s, m, h, d, w, e.g. 90d or 10m)")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def expiry(expires_in: str | None, expires_at: str | None, now: datetime) -> datetime | None:
    """When a token expires, from --expires-in or --expires-at (not both); None: it never expires."""
    if expires_in and expires_at:
        raise ValueError("give --expires-in or --expires-at, not both")
    if expires_in:
        duration = parse_duration(expires_in)
        if duration <= timedelta(0):
            raise ValueError("--expires-in must be positive")
        return now + duration
    if expires_at:
        try:
            moment = datetime.fromisoformat(expires_at)
        except ValueError:
            raise ValueError(f"--expires-at is not an ISO 8601 time: {expires_at!r}") from None
        if moment.tzinfo is None:
            raise ValueError("--expires-at needs a time zone, e.g. 2027-01-01T00:00:00Z or +05:30")
        if moment <= now:
            raise ValueError("--expires-at is in the past")
        return moment
    return None


def check_scope(scope: TokenScope) -> None:
    """Refuse scopes that would grant nothing or mean nothing for the role, before a token is issued."""
    if scope.distributors and scope.role is not Role.CONNECTOR:
        raise ValueError("--distributor is for connector tokens (a distributor token is bound to its subject)")
    if scope.geo_ids and scope.role is not Role.REGIONAL_MANAGER:
        raise ValueError("--geo is for regional_manager tokens")
    if scope.role is Role.CONNECTOR and not scope.distributors:
        raise ValueError("a connector token needs at least one --distributor it posts for")
    if scope.role is Role.REGIONAL_MANAGER and not scope.geo_ids:
        raise ValueError("a regional_manager token needs at least one --geo (zone or region) it reads")
    if not scope.subject.strip():
        raise ValueError("--subject must not be empty")


def _run(database_url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def go() -> T:
        await migrate_auth(database_url)  # the same migrations the services apply, so the CLI may run first
        conn = await asyncpg.connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except (TokenNotFound, TokenNotRotatable, CliError) as error:
        message = f"no token with id {error.args[0]}" if isinstance(error, TokenNotFound) else str(error)
        console.print(f"error: {message}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, psycopg.Error) as error:
        console.print(f"error: the token store cannot be used: {error}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else "-"


def _status(token: StoredToken, now: datetime) -> str:
    state = token.state(now)
    return f"{state}, rotated into {token.replaced_by}" if token.replaced_by is not None else state


def _describe(token: StoredToken) -> str:
    scope = [f"device {token.device_id}"] if token.device_id else []
    scope += [f"distributors {','.join(token.distributors)}"] if token.distributors else []
    scope += [f"geo {','.join(token.geo_ids)}"] if token.geo_ids else []
    return (
        f"token {token.id}: {token.role} {token.subject}"
        + (f" ({'; '.join(scope)})" if scope else "")
        + f", expires {_when(token.expires_at) if token.expires_at else 'never'}"
    )


def _print_secret(issued: IssuedToken) -> None:
    console.print(f"Issued {_describe(issued.stored)}.", markup=False, highlight=False)
    console.print("The token is printed once, below; it cannot be shown again (only its hash is stored).")
    print(issued.token)


def _scope_or_exit(
    role: Role, subject: str, device: str | None, distributors: list[str] | None, geo: list[str] | None
) -> TokenScope:
    scope = TokenScope(role, subject.strip(), device or None, frozenset(distributors or ()), frozenset(geo or ()))
    try:
        check_scope(scope)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return scope


def _expiry_or_exit(expires_in: str | None, expires_at: str | None) -> datetime | None:
    try:
        return expiry(expires_in, expires_at, datetime.now(UTC))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--expires-in/--expires-at") from None


EXPIRES_IN = typer.Option(None, "--expires-in", help="Lifetime, e.g. 90d, 12h, 10m (s, m, h, d, w).")
EXPIRES_AT = typer.Option(None, "--expires-at", help="Expiry as ISO 8601 with a time zone, e.g. 2027-01-01T00:00Z.")


def make_app() -> typer.Typer:
    app = typer.Typer(
        help="API tokens in the token store: issue (shown once), list, revoke, rotate; bootstrap a first admin.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )

    @app.command("issue")
    def issue_command(
        role: Role = typer.Option(..., "--role", case_sensitive=False, help="What the token may do."),
        subject: str = typer.Option(..., "--subject", help="Rep id, connector id, distributor id or person."),
        device: str | None = typer.Option(None, "--device", help="Device id: events posted must carry it as source."),
        distributor: list[str] | None = typer.Option(None, "--distributor", help="Connector: a bound distributor."),
        geo: list[str] | None = typer.Option(None, "--geo", help="Regional manager: a zone or region it reads."),
        expires_in: str | None = EXPIRES_IN,
        expires_at: str | None = EXPIRES_AT,
        label: str | None = typer.Option(None, "--label", help="A note for people: whose phone, which ERP."),
        database_url: str = DATABASE_URL,
    ) -> None:
        """Issue a token and print it once."""
        scope = _scope_or_exit(role, subject, device, distributor, geo)
        expires = _expiry_or_exit(expires_in, expires_at)
        if scope.role is Role.REP and scope.device_id is None:
            console.print("note: no --device, so events posted with this rep token may name any source device")
        issued = _run(database_url, lambda conn: issue_token(conn, scope, label=label, expires_at=expires))
        _print_secret(issued)

    @app.command("list")
    def list_command(
        role: Role | None = typer.Option(None, "--role", case_sensitive=False, help="Only this role."),
        subject: str | None = typer.Option(None, "--subject", help="Only this subject."),
        active: bool = typer.Option(False, "--active", help="Only tokens neither revoked nor expired."),
        database_url: str = DATABASE_URL,
    ) -> None:
        """Tokens in the store (never a secret, nor its hash): id, role, subject, device, scope, dates, status."""
        tokens = _run(database_url, lambda conn: list_tokens(conn, role=role, subject=subject, active_only=active))
        now = datetime.now(UTC)
        table = Table("id", "role", "subject", "device", "scope", "label", "issued", "expires", "revoked", "status")
        for token in tokens:
            scope = ", ".join([*token.distributors, *token.geo_ids]) or "-"
            table.add_row(
                str(token.id),
                token.role,
                token.subject,
                token.device_id or "-",
                scope,
                token.label or "-",
                _when(token.issued_at),
                _when(token.expires_at),
                _when(token.revoked_at),
                _status(token, now),
            )
        out.print(table)
        console.print(f"{len(tokens)} token(s)")

    @app.command("revoke")
    def revoke_command(
        token_id: int = typer.Argument(..., help="The token's id (from `list`)."), database_url: str = DATABASE_URL
    ) -> None:
        """Revoke a token: refused by every service within SELLTHROUGH_TOKEN_REFRESH_SECONDS."""
        token, revoked_now = _run(database_url, lambda conn: revoke_token(conn, token_id))
        verb = "Revoked" if revoked_now else "Already revoked"
        console.print(f"{verb} at {_when(token.revoked_at)}: {_describe(token)}.", markup=False, highlight=False)

    @app.command("rotate")
    def rotate_command(
        token_id: int = typer.Argument(..., help="The token's id (from `list`)."),
        grace: str = typer.Option("10m", "--grace", help="How long the old token keeps working, e.g. 10m, 1h, 0s."),
        expires_in: str | None = EXPIRES_IN,
        expires_at: str | None = EXPIRES_AT,
        database_url: str = DATABASE_URL,
    ) -> None:
        """Issue a new token of the same scope (printed once); the old one expires after the grace. The new one
        lives as long as the old one was issued for, unless --expires-in/--expires-at say otherwise."""
        try:
            grace_period = parse_duration(grace)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--grace") from None
        expires = _expiry_or_exit(expires_in, expires_at)
        old, new = _run(
            database_url,
            lambda conn: rotate_token(conn, token_id, grace=grace_period, expires_at=expires, now=datetime.now(UTC)),
        )
        console.print(f"Old {_describe(old)} (rotated into token {new.stored.id}).", markup=False, highlight=False)
        _print_secret(new)

    @app.command("bootstrap")
    def bootstrap_command(
        subject: str = typer.Option("admin", "--subject", help="Subject of the admin token, if one is issued."),
        expires_in: str | None = EXPIRES_IN,
        expires_at: str | None = EXPIRES_AT,
        database_url: str = DATABASE_URL,
    ) -> None:
        """First start of a deployment: if no active admin token exists, issue one and print it once; otherwise
        say so and exit 0 (safe to run on every start)."""
        expires = _expiry_or_exit(expires_in, expires_at)
        existing, issued = _run(database_url, lambda conn: bootstrap_admin(conn, subject=subject, expires_at=expires))
        if issued is None:
            console.print(f"An active admin token exists (token {existing}); nothing issued.")
            return
        _print_secret(issued)

    return app


app = make_app()
