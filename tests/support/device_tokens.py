"""Tokens for a field force: each rep's bound to its phone (`<rep>-phone`), plus an admin and an analyst."""

from collections.abc import Iterable
from pathlib import Path

from sellthrough_devstack.tokens import issue_tokens
from sellthrough_runtime.auth import Role
from tests.conftest import Tokens


def device_bound_tokens(directory: Path, reps: Iterable[str]) -> Tokens:
    issued = issue_tokens(
        [("admin", Role.ADMIN, "admin"), ("analyst", Role.ANALYST, "analyst")]
        + [(rep, Role.REP, rep, {"device_id": f"{rep}-phone"}) for rep in reps],
        directory / "tokens.json",
        directory / "tokens.env",
    )
    return Tokens(directory / "tokens.json", issued)
