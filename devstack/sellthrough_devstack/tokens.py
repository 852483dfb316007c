"""Development tokens: random secrets written to .dev, hashes to the file the services read."""

import json
import os
import secrets
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


def issue_tokens(specs: list[TokenSpec], tokens_file: Path, secrets_file: Path) -> dict[str, IssuedToken]:
    """Create one random token per spec. `tokens_file` holds only hashes (the services read it); `secrets_file`
    holds the tokens themselves as shell variables, readable by the owner only."""
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
    secrets_file.write_text("".join(f"{t.name.upper()}_TOKEN={t.token}\n" for t in issued.values()))
    os.chmod(secrets_file, 0o600)
    return issued
