from datetime import UTC, datetime, timedelta

import pytest

from sellthrough_runtime.auth import Role, TokenEntry, TokenRegistry, hash_token
from sellthrough_runtime.problems import ProblemError

REGISTRY = TokenRegistry(
    [
        TokenEntry(sha256=hash_token("good"), role=Role.REP, subject="REP-1"),
        TokenEntry(
            sha256=hash_token("old"),
            role=Role.ANALYST,
            subject="a",
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        ),
        TokenEntry(
            sha256=hash_token("later").upper(),
            role=Role.ANALYST,
            subject="b",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        ),
    ]
)


def test_a_known_token_authenticates_as_its_role_and_subject() -> None:
    principal = REGISTRY.authenticate("Bearer good")
    assert (principal.role, principal.subject) == (Role.REP, "REP-1")
    assert REGISTRY.authenticate("bearer later").subject == "b"


@pytest.mark.parametrize(
    ("header", "slug"),
    [
        (None, "unauthorized"),
        ("Bearer nope", "unauthorized"),
        ("Token good", "unauthorized"),
        ("Bearer", "unauthorized"),
        ("Bearer old", "token-expired"),
    ],
)
def test_bad_tokens_are_refused_with_401(header: str | None, slug: str) -> None:
    with pytest.raises(ProblemError) as refused:
        REGISTRY.authenticate(header)
    assert refused.value.status == 401
    assert refused.value.slug == slug


def test_the_token_file_holds_hashes_not_tokens(tmp_path) -> None:
    from sellthrough_devstack.tokens import issue_tokens

    issued = issue_tokens([("ops", Role.ADMIN, "ops")], tmp_path / "t.json", tmp_path / "t.env")
    assert issued["ops"].token not in (tmp_path / "t.json").read_text()
    assert TokenRegistry.from_file(tmp_path / "t.json").authenticate(f"Bearer {issued['ops'].token}").subject == "ops"
    assert oct((tmp_path / "t.env").stat().st_mode & 0o777) == "0o600"
