"""deploy/compose.yaml as docker compose reads it: the file, its variable substitution, and the environment
each service is handed when an operator sets only the required secrets."""

import re
from functools import cache
from typing import Any

import yaml

from tests.deploy.code_facts import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"


def interpolate(value: str, environ: dict[str, str] | None = None) -> str:
    """Compose's variable substitution ($$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, nested
    defaults), from `environ` (empty: what compose does with nothing set in the shell)."""
    environ = environ or {}
    out, i = "", 0
    while i < len(value):
        if value.startswith("$$", i):
            out, i = out + "$", i + 2
        elif value.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if value.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= value[j] == "}"
                j += 1
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(:-|-|:\?|\?)?(.*)", value[i + 2 : j - 1], re.S)
            assert match, f"bad substitution in {value!r}"
            name, operator, argument = match.groups()
            unset = name not in environ if operator in {"-", "?"} else not environ.get(name)
            if operator and operator.endswith("?") and unset:
                raise AssertionError(f"compose needs {name}: {argument}")
            out += interpolate(argument, environ) if operator and unset else environ.get(name, "")
            i = j
        else:
            out, i = out + value[i], i + 1
    return out


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


COMPOSE_SECRETS = {
    "POSTGRES_PASSWORD": "pg-admin-secret",
    "ORDER_CAPTURE_DB_PASSWORD": "oc-secret",
    "STOCK_LEDGER_DB_PASSWORD": "sl-secret",
    "SCHEME_ENGINE_DB_PASSWORD": "se-secret",
    "QUERY_API_DB_PASSWORD": "qa-secret",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}
"""What an operator must set (deploy/.env.example lists them): compose refuses to start without any of them."""


def compose_env(service: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment as compose hands it over with only the required secrets set in the shell."""
    environment = compose()["services"][service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    given = COMPOSE_SECRETS if environ is None else environ
    return {name: interpolate(str(value), given) for name, value in environment.items()}


def refusal(service: str, environ: dict[str, str]) -> str | None:
    """Why compose refuses to start `service` with `environ` ("compose needs NAME"), or None."""
    try:
        compose_env(service, environ)
    except AssertionError as error:
        return str(error).split(":")[0]
    return None


def password_variables(compose_text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]*PASSWORD[A-Z0-9_]*)", compose_text))
