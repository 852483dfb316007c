"""Bearer-token authentication: who is calling, and what a role may do.

Tokens come from three places (authenticator.py puts them together): the token store in PostgreSQL, managed
with the `sellthrough-tokens` CLI (token_store.py, token_cache.py); a static file of sha256 hashes (below),
which development and the tests use; and, optionally, JWTs of an OpenID Connect provider (oidc.py).

Token file (JSON):
    {"tokens": [{"sha256": "<hex sha256 of the token>", "role": "rep", "subject": "REP-0001",
                 "expires_at": "2027-01-01T00:00:00Z"}]}
Roles:
- rep: posts field events, only as itself (actor and rep id must be its subject), at outlets of its territory;
- connector: posts connector events (primary invoices, stock counts, claims) as itself, for the distributors
  it is bound to (`distributors`);
- distributor: a distributor's own login (subject = distributor id): posts its counts and claims, reads its own
  stock, claims, sales, orders and alerts;
- regional_manager: reads everything under its zones or regions (`geo_ids`); cannot write;
- admin: posts reference data and may post any event as any actor (back-fills, demo data);
- analyst: reads projections nationally; cannot write.
A token may name the device it was issued to (`device_id`): events posted with it must carry that `source`.
Each token is rate-limited per role (settings `rate_limit_*`; see ratelimit.py).
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from pydantic import AwareDatetime, BaseModel

from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.ratelimit import TokenRateLimiter

log = logging.getLogger(__name__)


class Role(StrEnum):
    REP = "rep"
    CONNECTOR = "connector"
    DISTRIBUTOR = "distributor"
    REGIONAL_MANAGER = "regional_manager"
    ADMIN = "admin"
    ANALYST = "analyst"


@dataclass(frozen=True)
class Principal:
    """Who is calling. `subject` is the rep id (rep), connector id (connector), distributor id (distributor) or
    a person's id (regional_manager, admin, analyst)."""

    role: Role
    subject: str
    device_id: str | None = None
    """The device the token was issued to; the `source` of every event posted with it must equal it."""
    distributors: frozenset[str] = frozenset()
    """A connector's bound distributors (invoices, counts, claims only for these); a distributor: itself."""
    geo_ids: frozenset[str] = frozenset()
    """A regional manager's zones or regions: it reads everything under them."""

    def __post_init__(self) -> None:
        if self.role is Role.DISTRIBUTOR and not self.distributors:
            object.__setattr__(self, "distributors", frozenset({self.subject}))


class TokenEntry(BaseModel):
    sha256: str
    role: Role
    subject: str
    expires_at: AwareDatetime | None = None
    device_id: str | None = None
    distributors: list[str] = []
    geo_ids: list[str] = []

    def principal(self) -> Principal:
        return Principal(self.role, self.subject, self.device_id, frozenset(self.distributors), frozenset(self.geo_ids))


class TokenFile(BaseModel):
    tokens: list[TokenEntry]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sellthrough"'}


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (401 if there is none)."""
    if not authorization:
        raise ProblemError(401, "unauthorized", "A bearer token is required.", headers=CHALLENGE)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "unauthorized", "Use 'Authorization: Bearer <token>'.", headers=CHALLENGE)
    return token.strip()


def refuse_unknown() -> ProblemError:
    return ProblemError(401, "unauthorized", "The token is not valid.", headers=CHALLENGE)


def refuse_if_expired(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise ProblemError(401, "token-expired", "The token has expired.", headers=CHALLENGE)


class TokenRegistry:
    """The static tokens of a file, read once at start."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self._by_hash = {entry.sha256.lower(): entry for entry in entries}

    @classmethod
    def from_file(cls, path: Path | None) -> "TokenRegistry":
        if path is None:
            return cls([])
        return cls(TokenFile.model_validate_json(path.read_bytes()).tokens)

    def entry(self, digest: str) -> TokenEntry | None:
        return self._by_hash.get(digest)

    def authenticate(self, authorization: str | None) -> Principal:
        entry = self._by_hash.get(hash_token(bearer_token(authorization)))
        if entry is None:
            raise refuse_unknown()
        refuse_if_expired(entry.expires_at)
        return entry.principal()


class Authenticates(Protocol):
    async def principal(self, authorization: str | None) -> Principal:
        """The caller the Authorization header proves, or a ProblemError (401, 403, 503)."""
        ...


async def authenticated(request: Request) -> Principal:
    """The request's principal, counted against its token's rate limit (429 past it). Every authenticated
    route depends on this, so no route can forget the limit; FastAPI runs it once per request."""
    authenticator: Authenticates = request.app.state.tokens
    principal = await authenticator.principal(request.headers.get("authorization"))
    limiter: TokenRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.check(principal.role.value, principal.subject)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


def require_roles(*roles: Role) -> Any:
    """A route dependency refusing (403) principals without one of `roles`."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise ProblemError(
                403,
                "forbidden",
                f"Role '{principal.role.value}' may not do this; needs one of {sorted(r.value for r in roles)}.",
            )
        return principal

    return Depends(check)
