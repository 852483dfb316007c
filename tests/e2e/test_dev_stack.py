"""`make dev` as a user runs it: the CLI starts everything, loads demo data, and the printed example works."""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
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
        # Reference data, then schemes and the trade history, then the field force's week from the reps' phones.
        assert started.stdout.count("'rejected': 0") == 3, "the demo brand is loaded whole: " + started.stdout
        yield root
    finally:
        stopped = subprocess.run([*cli, "stop", "--root", str(root)], env=env, capture_output=True, text=True)
        assert "postgres" in stopped.stdout, stopped.stdout + stopped.stderr


def test_the_reps_last_week_comes_from_their_phones_through_the_field_client(dev_root: Path) -> None:
    """`up` has the simulator capture the last 7 days on each rep's phone queue (.dev/field) and each phone sync
    with its device-bound token: every order of the simulator's ledger is in the projection, sent by the rep's
    phone, with its location verdict, and nothing else is on those days (the history stops where they begin).
    First in the module: the other tests add orders."""
    state = json.loads((dev_root / "stack.json").read_text())
    analyst = dict(line.split("=", 1) for line in (dev_root / "tokens.env").read_text().splitlines())["ANALYST_TOKEN"]
    ledger = json.loads((dev_root / "field" / "ledger.json").read_text())
    assert ledger["off_site_event_ids"], "the small demo brand still has a field week, with off-site captures"
    field_days = {o["day"] for o in ledger["orders"]}
    today = datetime.now(UTC).date()
    # Days in the business time zone (Asia/Kolkata): a late call yesterday (UTC) may count on today.
    params = {"from": min(field_days), "to": str(today + timedelta(days=1)), "limit": "1000"}
    with httpx.Client(base_url=state["urls"]["query-api"], headers={"Authorization": f"Bearer {analyst}"}) as api:
        page = api.get("/v1/sales/events", params=params).json()

    # From the ledger's orders (its other records, e.g. visits, are not sales events).
    assert page["total"]["events"] == len(ledger["orders"]) == len(page["rows"])
    assert page["total"]["units"] == sum(o["units"] for o in ledger["orders"])
    assert {r["event_id"] for r in page["rows"]} == {o["event_id"] for o in ledger["orders"]}
    assert all(r["source"] == f"{r['rep_id']}-phone" == f"{r['actor']}-phone" for r in page["rows"])
    verdicts = {r["event_id"]: r["location_verdict"] for r in page["rows"]}
    off_site = set(ledger["off_site_event_ids"])
    assert {e for e, v in verdicts.items() if v == "off_site"} == off_site
    assert all(v == "on_site" for e, v in verdicts.items() if e not in off_site)
    # The device tokens are bound to the phones and kept apart from tokens.env.
    device_tokens = json.loads((dev_root / "field" / "tokens.json").read_text())
    assert set(device_tokens) >= {o["rep_id"] for o in ledger["orders"]}
    entries = json.loads((dev_root / "tokens.json").read_text())["tokens"]
    bound = {e["subject"]: e["device_id"] for e in entries if e["role"] == "rep" and e.get("device_id")}
    assert bound == {rep: f"{rep}-phone" for rep in device_tokens}
    assert not set(device_tokens.values()) & set((dev_root / "tokens.env").read_text().split("="))


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
    """README 'Run it': `sellthrough-field simulate` on `.dev/reference.json` with the phones' tokens in
    `.dev/field/tokens.json`, then `sellthrough-field sync`. A week: the small demo brand here has outlets on its
    Monday and Tuesday beats only."""
    state = json.loads((dev_root / "stack.json").read_text())
    tokens = str(dev_root / "field" / "tokens.json")
    field, url = [sys.executable, "-m", "sellthrough_field"], state["urls"]["order-capture"]
    out = dev_root / "field-more"
    simulated = subprocess.run(
        [*field, "simulate", "--reference", str(dev_root / "reference.json"), "--out", str(out), "--reps", "20",
         "--days", "7", "--url", url, "--tokens", tokens, "--offline-last-day"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    synced = subprocess.run(
        [*field, "sync", str(out), "--url", url, "--tokens", tokens],
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
