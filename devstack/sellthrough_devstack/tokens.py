"""Development tokens: random secrets written to .dev, hashes to the file the services read."""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sellthrough_runtime.auth import Role, hash_token


@dataclass(frozen=True)
class IssuedToken:
    name: str
    role: Role
    subject: str
    token: str


def issue_tokens(specs: list[tuple[str, Role, str]], tokens_file: Path, secrets_file: Path) -> dict[str, IssuedToken]:
    """Create one random token per (name, role, subject). `tokens_file` holds only hashes (the services read
    it); `secrets_file` holds the tokens themselves as shell variables, readable by the owner only."""
    issued = {name: IssuedToken(name, role, subject, secrets.token_urlsafe(24)) for name, role, subject in specs}
    tokens_file.parent.mkdir(parents=True, exist_ok=True)
    tokens_file.write_text(
        json.dumps(
            {
                "tokens": [
                    {"sha256": hash_token(t.token), "role": t.role.value, "subject": t.subject} for t in issued.values()
                ]
            },
            indent=2,
        )
    )
    secrets_file.write_text("".join(f"{t.name.upper()}_TOKEN={t.token}\n" for t in issued.values()))
    os.chmod(secrets_file, 0o600)
    return issued
