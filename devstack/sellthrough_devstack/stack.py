"""The whole development stack in the background: embedded Postgres, Tansu, topics, the four services.

State (ports, pids, URLs) is kept in .dev/stack.json so `stop` and `status` work from any shell.
DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS, when set, are used instead of starting the embedded ones.
"""

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sellthrough_field.simulate import device_of

from sellthrough_devstack.broker import EmbeddedBroker
from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import port_open, stop_pid
from sellthrough_devstack.services import SERVICE_MODULES, ServiceProcess
from sellthrough_devstack.tokens import IssuedToken, TokenSpec, device_token_name, issue_tokens, write_device_tokens
from sellthrough_runtime.auth import Role
from sellthrough_runtime.kafka import ensure_topics

DEFAULT_PORTS = {
    "postgres": 55432,
    "kafka": 59092,
    "order-capture": 8001,
    "stock-ledger": 8002,
    "scheme-engine": 8003,
    "query-api": 8004,
}


@dataclass
class StackState:
    root: str
    database_url: str
    kafka_bootstrap_servers: str
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    embedded_postgres_dir: str | None = None

    @classmethod
    def load(cls, root: Path) -> "StackState | None":
        path = root / "stack.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self) -> None:
        Path(self.root, "stack.json").write_text(json.dumps(asdict(self), indent=2))


def _ports() -> dict[str, int]:
    return {
        name: int(os.environ.get(f"SELLTHROUGH_DEV_{name.upper().replace('-', '_')}_PORT", port))
        for name, port in DEFAULT_PORTS.items()
    }


def start(
    root: Path, rep_id: str, distributor_ids: Sequence[str] = (), device_reps: Sequence[str] = ()
) -> tuple[StackState, dict[str, IssuedToken]]:
    """Start the stack; `rep_id` is the rep whose token is issued as REP_TOKEN (the curl example's rep). Each rep of
    `device_reps` gets a token bound to its phone (`device:<rep>`, written to field/tokens.json, not tokens.env)."""
    root.mkdir(parents=True, exist_ok=True)
    if (previous := StackState.load(root)) is not None and previous.pids:
        raise RuntimeError("a dev stack is already running (see .dev/stack.json); run `make stop` first")
    ports = _ports()
    logs = root / "logs"
    state = StackState(str(root), os.environ.get("DATABASE_URL", ""), os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    try:
        if not state.database_url:
            _require_free(ports["postgres"], "postgres")
            postgres = EmbeddedPostgres(root / "pg" / "data", ports["postgres"])
            postgres.start()
            state.database_url = postgres.url
            state.embedded_postgres_dir = str(postgres.data_dir)
            state.save()
        if not state.kafka_bootstrap_servers:
            _require_free(ports["kafka"], "kafka")
            broker = EmbeddedBroker(ports["kafka"], logs / "tansu.log")
            state.pids["tansu"] = broker.start()
            state.kafka_bootstrap_servers = broker.bootstrap_servers
            state.save()
        asyncio.run(ensure_topics(state.kafka_bootstrap_servers))
        shown: list[TokenSpec] = [
            ("admin", Role.ADMIN, "admin"),
            ("analyst", Role.ANALYST, "analyst"),
            # A connector writes only for the distributors it is bound to: here every distributor of the demo.
            ("connector", Role.CONNECTOR, "erp-connector", {"distributors": sorted(distributor_ids)}),
            ("rep", Role.REP, rep_id),
        ]
        devices: list[TokenSpec] = [
            (device_token_name(r), Role.REP, r, {"device_id": device_of(r)}) for r in device_reps
        ]
        tokens = issue_tokens(
            [*shown, *devices], root / "tokens.json", root / "tokens.env", in_secrets_file={s[0] for s in shown}
        )
        if device_reps:
            write_device_tokens(
                root / "field" / "tokens.json", {r: tokens[device_token_name(r)].token for r in device_reps}
            )
        env = {
            "DATABASE_URL": state.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": state.kafka_bootstrap_servers,
            "SELLTHROUGH_TOKENS_FILE": str(root / "tokens.json"),
            "SELLTHROUGH_BUSINESS_TIMEZONE": os.environ.get("SELLTHROUGH_BUSINESS_TIMEZONE", "Asia/Kolkata"),
        }
        for name in SERVICE_MODULES:
            _require_free(ports[name], name)
            service = ServiceProcess(name, ports[name], env, logs / f"{name}.log")
            state.pids[name] = service.start()
            state.urls[name] = service.url
            state.save()
    except BaseException:
        stop(root)
        raise
    return state, tokens


def stop(root: Path) -> list[str]:
    state = StackState.load(root)
    if state is None:
        return []
    stopped = []
    for name, pid in reversed(list(state.pids.items())):
        stop_pid(pid)
        stopped.append(name)
    if state.embedded_postgres_dir:
        EmbeddedPostgres(Path(state.embedded_postgres_dir), 0).stop()
        stopped.append("postgres")
    Path(root, "stack.json").unlink(missing_ok=True)
    return stopped


def _require_free(port: int, name: str) -> None:
    if port_open(port):
        env_name = f"SELLTHROUGH_DEV_{name.upper().replace('-', '_')}_PORT"
        raise RuntimeError(f"port {port} for {name} is already in use; free it or set {env_name}")
