"""`make dev` as a user runs it: the CLI starts everything, loads demo data, and the printed example works."""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sellthrough_devstack.processes import free_port
from sellthrough_devstack.stack import DEFAULT_PORTS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev_root() -> Iterator[Path]:
    # World-searchable (not pytest's private tmp dir): as root, Postgres runs as an unprivileged user.
    root = Path(tempfile.mkdtemp(prefix="sellthrough-dev-test-"))
    root.chmod(0o755)
    env = {
        **os.environ,
        **{f"SELLTHROUGH_DEV_{name.upper().replace('-', '_')}_PORT": str(free_port()) for name in DEFAULT_PORTS},
    }
    env.pop("DATABASE_URL", None)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    cli = [sys.executable, "-m", "sellthrough_devstack.cli"]
    started = subprocess.run(
        [*cli, "up", "--root", str(root), "--outlets", "200", "--orders", "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert started.stdout.count("'rejected': 0") == 2, "the demo brand is loaded whole: " + started.stdout
        yield root
    finally:
        stopped = subprocess.run([*cli, "stop", "--root", str(root)], env=env, capture_output=True, text=True)
        assert "postgres" in stopped.stdout, stopped.stdout + stopped.stderr


def test_up_loads_the_demo_brand_and_the_printed_example_posts_and_reads_an_order(dev_root: Path) -> None:
    state = json.loads((dev_root / "stack.json").read_text())
    assert set(state["urls"]) == {"order-capture", "stock-ledger", "scheme-engine", "query-api"}

    run = subprocess.run(["bash", str(dev_root / "example.sh")], capture_output=True, text=True, timeout=60)

    assert run.returncode == 0, run.stderr
    posted, read = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert posted["accepted"] == 1, posted
    assert read["level"] == "outlet"
    assert read["total"]["value"] != "0", "the demo orders and the new one are in the drill-down"


def test_the_field_client_runs_on_the_dev_stack_as_the_readme_shows(dev_root: Path) -> None:
    """README 'Run it': `sellthrough-field simulate` on `.dev/reference.json`, then `sellthrough-field sync`. A week:
    the small demo brand here has outlets on its Monday and Tuesday beats only."""
    state = json.loads((dev_root / "stack.json").read_text())
    tokens = dict(line.split("=", 1) for line in (dev_root / "tokens.env").read_text().splitlines() if "=" in line)
    field, out, url = [sys.executable, "-m", "sellthrough_field"], dev_root / "field", state["urls"]["order-capture"]
    simulated = subprocess.run(
        [*field, "simulate", "--reference", str(dev_root / "reference.json"), "--out", str(out), "--reps", "20",
         "--days", "7", "--url", url, "--token", tokens["ADMIN_TOKEN"], "--offline-last-day"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    synced = subprocess.run(
        [*field, "sync", str(out), "--url", url, "--token", tokens["ADMIN_TOKEN"]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert synced.returncode == 0, synced.stderr
    status = json.loads(
        subprocess.run([*field, "status", str(out), "--json"], capture_output=True, text=True, check=True).stdout
    )
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["events"] > 0
    assert sum(q["sent"] for q in status.values()) == ledger["events"]
    assert all(q["pending"] == 0 and q["rejected"] == 0 for q in status.values()), status
