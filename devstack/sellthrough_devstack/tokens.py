"""Development tokens: random secrets written to .dev, hashes to the file the services read."""

import json
import os
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sellthrough_runtime.auth import Role, hash_token


@dataclass(frozen=True)
class IssuedToken:
    name: str
    role: Role
    subject: str
    token: str


TokenSpec = tuple[str, Role, str] | tuple[str, Role, str, dict[str, Any]]
"""(name, role, subject) or (name, role, subject, scope), where scope holds TokenEntry fields such as
`distributors`, `geo_ids` or `device_id`."""


def issue_tokens(
    specs: list[TokenSpec], tokens_file: Path, secrets_file: Path, in_secrets_file: Collection[str] | None = None
) -> dict[str, IssuedToken]:
    """Create one random token per spec. `tokens_file` holds only hashes (the services read it); `secrets_file`
    holds the tokens themselves as shell variables, readable by the owner only: those named in `in_secrets_file`
    if given (the dev stack's hundred device tokens go to the field client's own file instead), else all."""
    issued: dict[str, IssuedToken] = {}
    entries = []
    for name, role, subject, *scope in specs:
        token = IssuedToken(name, role, subject, secrets.token_urlsafe(24))
        issued[name] = token
        entries.append(
            {"sha256": hash_token(token.token), "role": role.value, "subject": subject, **(scope or [{}])[0]}
        )
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(json.dumps({"tokens": entries}, indent=2))
    shown = [t for t in issued.values() if in_secrets_file is None or t.name in in_secrets_file]
    secrets_file.write_text("".join(f"{t.name.upper()}_TOKEN={t.token}\n" for t in shown))
    os.chmod(secrets_file, 0o600)
    return issued


def device_token_name(rep_id: str) -> str:
    return f"device:{rep_id}"


def write_device_tokens(path: Path, tokens: dict[str, str]) -> None:
    """rep id -> its phone's token, the file `sellthrough-field sync --tokens` reads; readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tokens, indent=2))
    os.chmod(path, 0o600)
