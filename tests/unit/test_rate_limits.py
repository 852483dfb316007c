"""Per-token rate limits: the limiter itself and its settings (over HTTP: tests/integration/test_request_limits.py)."""

import time

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from sellthrough_runtime.problems import ProblemError
from sellthrough_runtime.ratelimit import TokenRateLimiter, parse_rate_limit
from sellthrough_runtime.settings import ServiceSettings


def refusals(service: str, role: str) -> float:
    return REGISTRY.get_sample_value("sellthrough_rate_limited_total", {"service": service, "role": role}) or 0.0


def test_a_token_past_its_limit_is_refused_with_429_and_retry_after() -> None:
    limiter = TokenRateLimiter("unit-429", {"rep": "3/minute"})
    for _ in range(3):
        limiter.check("rep", "REP-1")
    before = refusals("unit-429", "rep")

    with pytest.raises(ProblemError) as refused:
        limiter.check("rep", "REP-1")

    assert (refused.value.status, refused.value.slug) == (429, "too-many-requests")
    assert refused.value.headers is not None
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert refused.value.extensions["limit"] == "3 per 1 minute"
    assert refusals("unit-429", "rep") == before + 1


def test_each_token_has_its_own_window_keyed_by_role_and_subject() -> None:
    limiter = TokenRateLimiter("unit-keys", {"rep": "1/minute", "analyst": "1/minute"})
    limiter.check("rep", "REP-1")
    limiter.check("rep", "REP-2")  # another rep: its own window
    limiter.check("analyst", "REP-1")  # the same subject under another role: its own window too
    with pytest.raises(ProblemError):
        limiter.check("rep", "REP-1")


def test_refused_requests_do_not_count_so_waiting_retry_after_works() -> None:
    limiter = TokenRateLimiter("unit-wait", {"connector": "2/second"})
    limiter.check("connector", "erp-1")
    limiter.check("connector", "erp-1")
    for _ in range(5):  # a client hammering while refused does not push its window further out
        with pytest.raises(ProblemError):
            limiter.check("connector", "erp-1")
    time.sleep(1.1)
    limiter.check("connector", "erp-1")


def test_unlimited_roles_and_unknown_roles_are_never_refused() -> None:
    limiter = TokenRateLimiter("unit-unlimited", {"admin": "unlimited"})
    for _ in range(2000):
        limiter.check("admin", "admin")
        limiter.check("someone", "else")


def test_several_limits_at_once_each_apply() -> None:
    limiter = TokenRateLimiter("unit-several", {"rep": "2/second;3/minute"})
    limiter.check("rep", "REP-1")
    limiter.check("rep", "REP-1")
    with pytest.raises(ProblemError) as per_second:
        limiter.check("rep", "REP-1")
    assert per_second.value.extensions["limit"] == "2 per 1 second"
    time.sleep(1.1)
    limiter.check("rep", "REP-1")
    with pytest.raises(ProblemError) as per_minute:
        limiter.check("rep", "REP-1")
    assert per_minute.value.extensions["limit"] == "3 per 1 minute"


def test_defaults_limit_people_and_connectors_but_not_admin_back_fills() -> None:
    limits = ServiceSettings().rate_limits
    assert limits == {
        "rep": "600/minute",
        "analyst": "1200/minute",
        "connector": "6000/minute",
        "admin": "unlimited",
    }
    assert all(parse_rate_limit(text) for role, text in limits.items() if role != "admin")
    assert parse_rate_limit(limits["admin"]) == []


def test_limits_come_from_the_environment_and_a_malformed_one_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SELLTHROUGH_RATE_LIMIT_REP", "30/minute")
    monkeypatch.setenv("SELLTHROUGH_RATE_LIMIT_ADMIN", "100/second")
    assert ServiceSettings().rate_limits["rep"] == "30/minute"
    assert ServiceSettings().rate_limits["admin"] == "100/second"
    monkeypatch.setenv("SELLTHROUGH_RATE_LIMIT_REP", "lots")
    with pytest.raises(ValidationError, match="not a rate limit"):
        ServiceSettings()
