"""Tokens people manage: their rows in PostgreSQL (schema `auth`, shared by every service that authenticates).

Only a sha256 of each token is stored. A slow password hash (bcrypt, argon2) protects secrets people choose,
which are guessable; these tokens are 256 random bits from `secrets`, so no guessing is possible whatever the
hash's speed, and a fast, unsalted hash lets a request find its row by an indexed equality lookup in microseconds.
The plain token exists only in the CLI's output at issue (and rotation).
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import asyncpg

from sellthrough_runtime.auth import Principal, Role, hash_token
from sellthrough_runtime.db import migrate

AUTH_SCHEMA = "auth"
AUTH_MIGRATIONS = Path(__file__).resolve().parent / "auth_migrations"

TOKEN_PREFIX = "stk_"
"""Marks a Sellthrough token, so secret scanners and people can tell what a leaked string is."""

TokenState = Literal["active", "expired", "revoked"]

_COLUMNS = (
    "id, hash, role, subject, device_id, distributors, geo_ids, label, issued_at, expires_at, revoked_at, replaced_by"
)
SELECT_BY_HASHES = f"SELECT {_COLUMNS} FROM auth.tokens WHERE hash = ANY($1::text[])"  # noqa: S608
SELECT_BY_ID = f"SELECT {_COLUMNS} FROM auth.tokens WHERE id = $1"  # noqa: S608
LOCK_BY_ID = f"SELECT {_COLUMNS} FROM auth.tokens WHERE id = $1 FOR UPDATE"  # noqa: S608
SELECT_LISTED = (
    f"SELECT {_COLUMNS} FROM auth.tokens"  # noqa: S608
    " WHERE ($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR subject = $2)"
    " AND (NOT $3 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())))"
    " ORDER BY id"
)
INSERT = (
    "INSERT INTO auth.tokens (hash, role, subject, device_id, distributors, geo_ids, label, expires_at)"  # noqa: S608
    f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}"
)
REVOKE = f"UPDATE auth.tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}"  # noqa: S608
# The old token lives on until the grace ends, or its own expiry if that comes first.
RETIRE = (
    "UPDATE auth.tokens SET replaced_by = $2,"  # noqa: S608
    " expires_at = LEAST(COALESCE(expires_at, 'infinity'::timestamptz), now() + $3::interval)"
    f" WHERE id = $1 RETURNING {_COLUMNS}"
)
ACTIVE_ADMIN = (
    "SELECT id FROM auth.tokens WHERE role = 'admin' AND revoked_at IS NULL"
    " AND (expires_at IS NULL OR expires_at > now()) ORDER BY id LIMIT 1"
)
BOOTSTRAP_LOCK = "SELECT pg_advisory_xact_lock(hashtext('sellthrough-tokens:bootstrap'))"


@dataclass(frozen=True)
class TokenScope:
    """What a token lets its holder be: the fields of its Principal."""

    role: Role
    subject: str
    device_id: str | None = None
    distributors: frozenset[str] = frozenset()
    geo_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoredToken:
    id: int
    hash: str
    role: str
    """As stored: a role this version does not know (written by a newer one) authenticates no one."""
    subject: str
    device_id: str | None
    distributors: tuple[str, ...]
    geo_ids: tuple[str, ...]
    label: str | None
    issued_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: int | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "StoredToken":
        return cls(
            id=row["id"],
            hash=row["hash"],
            role=row["role"],
            subject=row["subject"],
            device_id=row["device_id"],
            distributors=tuple(row["distributors"]),
            geo_ids=tuple(row["geo_ids"]),
            label=row["label"],
            issued_at=row["issued_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            replaced_by=row["replaced_by"],
        )

    def state(self, now: datetime) -> TokenState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def scope(self) -> TokenScope:
        """Raises ValueError for a role this version does not know."""
        return TokenScope(
            Role(self.role), self.subject, self.device_id, frozenset(self.distributors), frozenset(self.geo_ids)
        )

    def principal(self) -> Principal:
        scope = self.scope()
        return Principal(scope.role, scope.subject, scope.device_id, scope.distributors, scope.geo_ids)


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: its row, and the token itself, which is never stored and never shown again."""

    stored: StoredToken
    token: str


class TokenNotFound(LookupError):
    pass


class TokenNotRotatable(ValueError):
    pass


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def migrate_auth(database_url: str) -> int:
    return await migrate(database_url, AUTH_SCHEMA, AUTH_MIGRATIONS, runtime_tables=False)


async def tokens_by_hashes(conn: asyncpg.Connection | asyncpg.Pool, hashes: Sequence[str]) -> list[StoredToken]:
    return [StoredToken.from_row(row) for row in await conn.fetch(SELECT_BY_HASHES, list(hashes))]


async def token_by_id(conn: asyncpg.Connection, token_id: int) -> StoredToken | None:
    row = await conn.fetchrow(SELECT_BY_ID, token_id)
    return StoredToken.from_row(row) if row else None


async def list_tokens(
    conn: asyncpg.Connection, *, role: Role | None = None, subject: str | None = None, active_only: bool = False
) -> list[StoredToken]:
    rows = await conn.fetch(SELECT_LISTED, role.value if role else None, subject, active_only)
    return [StoredToken.from_row(row) for row in rows]


async def issue_token(
    conn: asyncpg.Connection, scope: TokenScope, *, label: str | None = None, expires_at: datetime | None = None
) -> IssuedToken:
    token = new_token()
    row = await conn.fetchrow(
        INSERT,
        hash_token(token),
        scope.role.value,
        scope.subject,
        scope.device_id,
        sorted(scope.distributors),
        sorted(scope.geo_ids),
        label,
        expires_at,
    )
    return IssuedToken(StoredToken.from_row(row), token)


async def revoke_token(conn: asyncpg.Connection, token_id: int) -> tuple[StoredToken, bool]:
    """Revoke a token now. Returns it, and whether this call revoked it (False: it was revoked before; revoking
    is idempotent)."""
    row = await conn.fetchrow(REVOKE, token_id)
    if row is not None:
        return StoredToken.from_row(row), True
    existing = await token_by_id(conn, token_id)
    if existing is None:
        raise TokenNotFound(token_id)
    return existing, False


async def rotate_token(
    conn: asyncpg.Connection, token_id: int, *, grace: timedelta, expires_at: datetime | None, now: datetime
) -> tuple[StoredToken, IssuedToken]:
    """A new token of the same scope and label; the old one expires after `grace`. Returns (old, new).

    `expires_at` is the new token's expiry; None keeps the old token's lifetime (from now), or none if it had none.
    """
    async with conn.transaction():
        row = await conn.fetchrow(LOCK_BY_ID, token_id)
        if row is None:
            raise TokenNotFound(token_id)
        old = StoredToken.from_row(row)
        if old.replaced_by is not None:
            raise TokenNotRotatable(f"token {token_id} was already rotated into token {old.replaced_by}")
        if old.state(now) != "active":
            raise TokenNotRotatable(f"token {token_id} is {old.state(now)}")
        try:
            scope = old.scope()
        except ValueError:
            raise TokenNotRotatable(f"token {token_id} has a role this version does not know: {old.role!r}") from None
        if expires_at is None and old.expires_at is not None:
            expires_at = now + (old.expires_at - old.issued_at)
        new = await issue_token(conn, scope, label=old.label, expires_at=expires_at)
        retired = StoredToken.from_row(await conn.fetchrow(RETIRE, token_id, new.stored.id, grace))
    return retired, new


async def bootstrap_admin(
    conn: asyncpg.Connection, *, subject: str, expires_at: datetime | None
) -> tuple[int, IssuedToken | None]:
    """Issue an admin token unless an active one exists: (its id, the new token) or (the existing id, None).
    Deployments starting at once (replicas, a re-run job) take turns, so at most one is issued."""
    async with conn.transaction():
        await conn.execute(BOOTSTRAP_LOCK)
        existing = await conn.fetchval(ACTIVE_ADMIN)
        if existing is not None:
            return int(existing), None
        issued = await issue_token(conn, TokenScope(Role.ADMIN, subject), label="bootstrap", expires_at=expires_at)
        return issued.stored.id, issued
