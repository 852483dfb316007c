"""Optional OpenID Connect: bearer JWTs verified against a provider's JWKS, their claims mapped to a Principal.

PyJWT does the verification; its PyJWKClient caches the key set and fetches it again for an unknown key id
(at most once per cooldown, so tokens with made-up key ids cannot make us hammer the provider). Only the
asymmetric algorithms in settings are accepted (checked there), never `none` or HS*.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from sellthrough_runtime.auth import CHALLENGE, Principal, Role
from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.settings import ServiceSettings

REQUIRED_CLAIMS = ["exp", "iss", "aud"]


@dataclass(frozen=True)
class ClaimNames:
    role: str = "role"
    subject: str = "sub"
    device: str = "device_id"
    distributors: str = "distributors"
    geo_ids: str = "geo_ids"


@dataclass(frozen=True)
class OidcConfig:
    jwks_url: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_seconds: int = 30
    jwks_cache_seconds: float = 300
    claims: ClaimNames = ClaimNames()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "OidcConfig | None":
        if not settings.oidc_jwks_url or not settings.oidc_issuer or not settings.oidc_audience:
            return None
        return cls(
            jwks_url=settings.oidc_jwks_url,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            algorithms=tuple(settings.oidc_algorithms),
            leeway_seconds=settings.oidc_leeway_seconds,
            jwks_cache_seconds=settings.oidc_jwks_cache_seconds,
            claims=ClaimNames(
                role=settings.oidc_role_claim,
                subject=settings.oidc_subject_claim,
                device=settings.oidc_device_claim,
                distributors=settings.oidc_distributors_claim,
                geo_ids=settings.oidc_geo_ids_claim,
            ),
        )


def looks_like_jwt(token: str) -> bool:
    """A compact JWS: three dot-separated parts, the first a base64url JSON object (it starts `eyJ`, `{"`).
    Our own tokens are base64url without dots, so the two kinds never meet."""
    return token.count(".") == 2 and token.startswith("eyJ")


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name; `a.b` reaches into nested objects (Keycloak's `realm_access.roles`)."""
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _strings(value: Any, claim: str) -> frozenset[str]:
    """A list of strings, or one string of them separated by spaces or commas (as some providers send scopes)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.replace(",", " ").split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    raise ProblemError(
        401, "unauthorized", f"The token's '{claim}' claim must be a list of strings.", headers=CHALLENGE
    )


def principal_from_claims(claims: Mapping[str, Any], names: ClaimNames) -> Principal:
    """The principal a verified token's claims describe. A token naming no role, or not exactly one role this
    system knows, is refused with 403: it is genuine, but grants nothing here."""
    known = {role.value for role in Role}
    roles = _strings(_claim(claims, names.role), names.role) & known
    if len(roles) != 1:
        raise ProblemError(
            403,
            "unknown-role",
            f"The token's '{names.role}' claim must name exactly one role of {sorted(known)}.",
        )
    subject = _claim(claims, names.subject)
    if not isinstance(subject, str) or not subject:
        raise ProblemError(401, "unauthorized", f"The token has no '{names.subject}' claim.", headers=CHALLENGE)
    device = _claim(claims, names.device)
    if device is not None and (not isinstance(device, str) or not device):
        raise ProblemError(
            401, "unauthorized", f"The token's '{names.device}' claim must be a string.", headers=CHALLENGE
        )
    (role,) = roles
    return Principal(
        Role(role),
        subject,
        device,
        _strings(_claim(claims, names.distributors), names.distributors),
        _strings(_claim(claims, names.geo_ids), names.geo_ids),
    )


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self._config = config
        self._keys = PyJWKClient(config.jwks_url, cache_jwk_set=True, lifespan=config.jwks_cache_seconds, timeout=5)

    async def principal(self, token: str) -> Principal:
        config = self._config
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in config.algorithms:
                raise jwt.InvalidAlgorithmError(f"algorithm {header.get('alg')!r} is not accepted")
            key = await self._signing_key(header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise ProblemError(401, "token-expired", "The token has expired.", headers=CHALLENGE) from None
        except jwt.PyJWKClientConnectionError:
            raise ProblemError(
                503, "identity-provider-unavailable", "The identity provider's keys cannot be fetched; try again."
            ) from None
        except jwt.PyJWTError as error:
            raise ProblemError(401, "unauthorized", f"The token is not valid: {error}", headers=CHALLENGE) from None
        return principal_from_claims(claims, config.claims)

    async def _signing_key(self, kid: object) -> PyJWK:
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("the token names no key (kid)")
        cache = self._keys.jwk_set_cache
        cached = cache.get() if cache is not None else None
        if isinstance(cached, PyJWKSet):
            for key in cached.keys:
                if key.key_id == kid and key.public_key_use in ("sig", None):
                    return key
        # Not in memory: PyJWKClient fetches over blocking HTTP, so off the event loop.
        return await asyncio.to_thread(self._keys.get_signing_key, kid)
