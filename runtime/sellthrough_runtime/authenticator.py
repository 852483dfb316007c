"""One answer to "who is calling?" from every source of tokens: OIDC for a JWT (when configured), else the static
tokens file, else the token store (through this process's cache)."""

import logging

from sellthrough_runtime.auth import (
    CHALLENGE,
    Principal,
    TokenRegistry,
    bearer_token,
    hash_token,
    refuse_if_expired,
    refuse_unknown,
)
from sellthrough_runtime.oidc import OidcVerifier, looks_like_jwt
from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.token_cache import TokenCache

log = logging.getLogger(__name__)


class Authenticator:
    def __init__(
        self, static: TokenRegistry, store: TokenCache | None = None, oidc: OidcVerifier | None = None
    ) -> None:
        self._static = static
        self._store = store
        self._oidc = oidc

    async def principal(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if self._oidc is not None and looks_like_jwt(token):
            return await self._oidc.principal(token)
        digest = hash_token(token)
        entry = self._static.entry(digest)
        if entry is not None:
            refuse_if_expired(entry.expires_at)
            return entry.principal()
        if self._store is None:
            raise refuse_unknown()
        stored = await self._store.lookup(digest)
        if stored is None:
            raise refuse_unknown()
        if stored.revoked_at is not None:
            raise ProblemError(401, "token-revoked", "The token has been revoked.", headers=CHALLENGE)
        refuse_if_expired(stored.expires_at)
        try:
            return stored.principal()
        except ValueError:
            log.warning("stored token with an unknown role", extra={"token_id": stored.id, "role": stored.role})
            raise refuse_unknown() from None
