"""The pure parts of managed tokens: durations and expiry, scopes, OIDC claim mapping, settings, the cache."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from sellthrough_runtime.auth import Role, TokenEntry, TokenRegistry, hash_token
from sellthrough_runtime.authenticator import Authenticator
from sellthrough_runtime.oidc import ClaimNames, looks_like_jwt, principal_from_claims
from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.settings import ServiceSettings
from sellthrough_runtime.token_cache import TokenCache
from sellthrough_runtime.token_store import StoredToken, TokenScope, new_token
from sellthrough_runtime.tokens_cli import check_scope, expiry, parse_duration

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("10m", timedelta(minutes=10)),
        ("12h", timedelta(hours=12)),
        ("30s", timedelta(seconds=30)),
        ("2w", timedelta(weeks=2)),
        (" 0s ", timedelta(0)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "1.5h", "-1d", "10y", "10 minutes"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_expiry_from_a_lifetime_or_a_moment() -> None:
    assert expiry("90d", None, NOW) == NOW + timedelta(days=90)
    assert expiry(None, "2027-01-01T00:00:00Z", NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    assert expiry(None, None, NOW) is None


@pytest.mark.parametrize(
    ("expires_in", "expires_at", "message"),
    [
        ("1d", "2027-01-01T00:00:00Z", "not both"),
        (None, "2027-01-01T00:00:00", "time zone"),
        (None, "2020-01-01T00:00:00Z", "past"),
        (None, "next tuesday", "ISO 8601"),
        ("0s", None, "positive"),
    ],
)
def test_bad_expiries_are_refused(expires_in: str | None, expires_at: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expiry(expires_in, expires_at, NOW)


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        (TokenScope(Role.REP, "REP-1", distributors=frozenset({"D1"})), "connector"),
        (TokenScope(Role.ANALYST, "a", geo_ids=frozenset({"Z1"})), "regional_manager"),
        (TokenScope(Role.CONNECTOR, "erp-1"), "--distributor"),
        (TokenScope(Role.REGIONAL_MANAGER, "rm"), "--geo"),
        (TokenScope(Role.REP, " "), "empty"),
    ],
)
def test_scopes_that_grant_nothing_or_mean_nothing_are_refused(scope: TokenScope, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_scope(scope)


def test_sensible_scopes_pass() -> None:
    check_scope(TokenScope(Role.REP, "REP-1", device_id="phone-7"))
    check_scope(TokenScope(Role.CONNECTOR, "erp-1", distributors=frozenset({"D1", "D2"})))
    check_scope(TokenScope(Role.REGIONAL_MANAGER, "rm", geo_ids=frozenset({"Z1"})))


def test_issued_tokens_are_long_random_and_never_look_like_a_jwt() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 40 and "." not in token and not looks_like_jwt(token) for token in tokens)
    assert looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")


def test_claims_map_to_role_subject_device_and_territory() -> None:
    names = ClaimNames(role="realm_access.roles", geo_ids="geo")
    claims = {"sub": "RM-1", "realm_access": {"roles": ["offline_access", "regional_manager"]}, "geo": "Z1 R3"}
    principal = principal_from_claims(claims, names)
    assert (principal.role, principal.subject) == (Role.REGIONAL_MANAGER, "RM-1")
    assert principal.geo_ids == frozenset({"Z1", "R3"})
    connector = principal_from_claims(
        {"sub": "erp-9", "role": "connector", "distributors": ["D1", "D2"], "device_id": "erp-host"}, ClaimNames()
    )
    assert (connector.distributors, connector.device_id) == (frozenset({"D1", "D2"}), "erp-host")
    distributor = principal_from_claims({"sub": "D1", "role": "distributor"}, ClaimNames())
    assert distributor.distributors == {"D1"}


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"sub": "x", "role": "superuser"}, 403),
        ({"sub": "x"}, 403),
        ({"sub": "x", "role": ["analyst", "admin"]}, 403),
        ({"role": "analyst"}, 401),
        ({"sub": "x", "role": "analyst", "geo_ids": [1, 2]}, 401),
        ({"sub": "x", "role": "rep", "device_id": 7}, 401),
    ],
)
def test_claims_that_name_no_single_known_role_or_no_subject_are_refused(
    claims: dict[str, object], status: int
) -> None:
    with pytest.raises(ProblemError) as refused:
        principal_from_claims(claims, ClaimNames())
    assert refused.value.status == status


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS512"], []])
def test_only_asymmetric_algorithms_can_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError, match="asymmetric"):
        ServiceSettings(oidc_algorithms=algorithms)


def test_oidc_needs_an_issuer_and_an_audience() -> None:
    with pytest.raises(ValidationError, match="ISSUER"):
        ServiceSettings(oidc_jwks_url="https://idp.example/jwks")
    ServiceSettings(oidc_jwks_url="https://idp.example/jwks", oidc_issuer="https://idp.example", oidc_audience="st")


def stored(token: str, **changes: object) -> StoredToken:
    fields: dict[str, object] = {
        "id": 1,
        "hash": hash_token(token),
        "role": "rep",
        "subject": "REP-1",
        "device_id": "phone-1",
        "distributors": (),
        "geo_ids": (),
        "label": None,
        "issued_at": NOW,
        "expires_at": None,
        "revoked_at": None,
        "replaced_by": None,
    }
    return StoredToken(**{**fields, **changes})  # type: ignore[arg-type]


class Store:
    """The database side of the cache, in memory: rows by hash, and every query asked of it."""

    def __init__(self, *rows: StoredToken) -> None:
        self.rows = {row.hash: row for row in rows}
        self.queries: list[list[str]] = []

    async def fetch(self, hashes: Sequence[str]) -> list[StoredToken]:
        self.queries.append(list(hashes))
        await asyncio.sleep(0.01)  # a round trip, so concurrent lookups can meet
        return [self.rows[h] for h in hashes if h in self.rows]


async def test_concurrent_unknown_tokens_share_queries_and_absent_ones_are_remembered() -> None:
    store = Store(stored("good"))
    cache = TokenCache(store.fetch, negative_seconds=60)
    digests = [hash_token(f"random-{i}") for i in range(200)] + [hash_token("good")]
    found = await asyncio.gather(*(cache.lookup(digest) for digest in digests))
    assert [row.subject for row in found if row is not None] == ["REP-1"]
    assert len(store.queries) <= 2, "200 lookups at once must not be 200 queries"
    await cache.lookup(hash_token("random-3"))
    await cache.lookup(hash_token("good"))
    assert sum(len(query) for query in store.queries) == len(digests)


async def test_a_refresh_sees_revocations_and_deletions() -> None:
    store = Store(stored("a"), stored("b", id=2))
    cache = TokenCache(store.fetch)
    assert (await cache.lookup(hash_token("a"))) is not None
    assert (await cache.lookup(hash_token("b"))) is not None
    store.rows[hash_token("a")] = stored("a", revoked_at=NOW)
    del store.rows[hash_token("b")]
    assert (await cache.lookup(hash_token("a"))).revoked_at is None  # type: ignore[union-attr]  # until a refresh
    await cache.refresh()
    assert (await cache.lookup(hash_token("a"))).revoked_at == NOW  # type: ignore[union-attr]
    store.queries.clear()
    assert (await cache.lookup(hash_token("b"))) is None
    assert store.queries == [[hash_token("b")]]  # forgotten by the refresh, so looked up (and found gone)


async def test_a_failed_lookup_reaches_every_waiting_request_and_the_next_one_retries() -> None:
    calls = 0

    async def fetch(hashes: Sequence[str]) -> list[StoredToken]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database down")
        return [stored("t")]

    cache = TokenCache(fetch)
    with pytest.raises(OSError, match="database down"):
        await cache.lookup(hash_token("t"))
    assert (await cache.lookup(hash_token("t"))) is not None


async def test_the_authenticator_tells_revoked_expired_and_unknown_apart() -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    store = Store(
        stored("live", expires_at=later),
        stored("revoked", id=2, revoked_at=NOW),
        stored("expired", id=3, expires_at=datetime.now(UTC) - timedelta(seconds=1)),
        stored("future-role", id=4, role="auditor"),
    )
    static = TokenRegistry([TokenEntry(sha256=hash_token("from-file"), role=Role.ADMIN, subject="ops")])
    authenticator = Authenticator(static, TokenCache(store.fetch))
    assert (await authenticator.principal("Bearer from-file")).subject == "ops"
    live = await authenticator.principal("Bearer live")
    assert (live.role, live.subject, live.device_id) == (Role.REP, "REP-1", "phone-1")
    for token, slug in [
        ("revoked", "token-revoked"),
        ("expired", "token-expired"),
        ("future-role", "unauthorized"),
        ("nope", "unauthorized"),
    ]:
        with pytest.raises(ProblemError) as refused:
            await authenticator.principal(f"Bearer {token}")
        assert (refused.value.status, refused.value.slug) == (401, slug), token
    assert hash_token("from-file") not in {h for query in store.queries for h in query}
