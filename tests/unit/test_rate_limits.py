"""Per-token rate limits: their settings (the limiter, counting in PostgreSQL: tests/integration/
test_rate_limit_counting.py; over HTTP: tests/integration/test_request_limits.py)."""

import pytest
from pydantic import ValidationError

from sellthrough_runtime.auth import Role
from sellthrough_runtime.ratelimit import parse_rate_limit
from sellthrough_runtime.settings import ServiceSettings


def test_every_role_is_limited_by_default_admin_far_above_a_demo_load() -> None:
    limits = ServiceSettings().rate_limits
    assert limits == {
        "rep": "600/minute",
        "analyst": "1200/minute",
        "connector": "60000/minute",
        "distributor": "1200/minute",
        "regional_manager": "1200/minute",
        "admin": "300000/minute",
    }
    assert set(limits) == {role.value for role in Role}
    assert all(parse_rate_limit(text) for text in limits.values())
    # `make dev` posts its demo brand (tens of thousands of events) from one client in batches of 500.
    (admin,) = parse_rate_limit(limits["admin"])
    assert admin.amount / admin.get_expiry() >= 5000 / 1


def test_unlimited_stays_an_explicit_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELLTHROUGH_RATE_LIMIT_ADMIN", "unlimited")
    assert parse_rate_limit(ServiceSettings().rate_limits["admin"]) == []


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
