"""The reference field client against real order-capture and query-api: a simulated field force with offline
reps, a flaky network and device-bound tokens, then a kill -9 of `sellthrough-field sync` mid-sync and a restart.
Totals in query-api equal the simulator's own ledger, and order-capture accepted each captured order exactly once."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sellthrough_field.queue import EventQueue

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import outlet_on_beat, reference_events, rep_with_territory
from tests.support.device_tokens import device_bound_tokens
from tests.support.services import running_with_reference_data

pytestmark = pytest.mark.e2e

REPS = ("REP-1", "REP-2", "REP-3", "REP-4")
DAYS = 3
END = datetime.now(UTC).date() - timedelta(days=1)

# Beyond the test brand: D3 outlets on beats, and REP-4 who works beat B-7 only, so the simulator has routes to
# rotate through (REP-3 covers every D3 outlet: beats B-7, B-8 and the unbeaten O4, O5).
BEAT_EVENTS = [
    outlet_on_beat(outlet, "D3", beat, lat=12.97 + n / 100)
    for n, (outlet, beat) in enumerate((("O8", "B-7"), ("O9", "B-7"), ("O10", "B-8")))
] + [rep_with_territory("REP-4", "D3", beat_ids=("B-7",))]


@pytest.fixture(scope="module")
def field_tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """Each rep's token bound to its phone: the client must send as that device."""
    return device_bound_tokens(tmp_path_factory.mktemp("field-tokens"), REPS)


@pytest.fixture(scope="module")
def services(infra: Infra, field_tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_with_reference_data(infra, field_tokens, ["order-capture", "query-api"]) as running:
        Api(running, field_tokens).post(BEAT_EVENTS)
        yield running


def field(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sellthrough_field", *args], capture_output=True, text=True, timeout=300
    )


def queue_counts(directory: Path) -> tuple[int, int, int]:
    pending = sent = rejected = 0
    for path in directory.glob("*.sqlite"):
        with EventQueue(path) as queue:
            counts = queue.counts()
        pending, sent, rejected = pending + counts.pending, sent + counts.sent, rejected + counts.rejected
    return pending, sent, rejected


def kill_mid_sync(args: list[str], directory: Path) -> int:
    """Start a sync, kill -9 it once it has settled some events and before it has settled all; return how many
    were still pending at the kill."""
    _, sent_before, _ = queue_counts(directory)
    process = subprocess.Popen(
        [sys.executable, "-m", "sellthrough_field", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            pending, sent, _ = queue_counts(directory)
            if sent > sent_before:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return pending
            time.sleep(0.005)
        pytest.fail(f"sync ended ({process.poll()}) before it could be killed mid-way")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def accepted_orders(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT event_id FROM order_capture.idempotency_keys WHERE event_type = 'OrderCaptured'"
        )
    finally:
        await conn.close()
    return [str(r["event_id"]) for r in rows]


def expected_by_outlet(ledger: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """distributor -> outlet -> {value, units}, from the ledger's own orders."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(
        lambda: defaultdict(lambda: {"value": Decimal(0), "units": 0})
    )
    for o in ledger["orders"]:
        row = out[o["distributor_id"]][o["outlet_id"]]
        row["value"] += Decimal(o["value"])
        row["units"] += o["units"]
    return out


def test_simulated_days_with_offline_reps_and_a_kill_mid_sync_match_the_ledger(
    services: dict[str, ServiceProcess], field_tokens: Tokens, infra: Infra, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps(reference_events() + BEAT_EVENTS))
    tokens_file = tmp_path / "device-tokens.json"
    tokens_file.write_text(json.dumps({rep: field_tokens.issued[rep].token for rep in REPS}))
    out = tmp_path / "field"
    url = services["order-capture"].url

    simulated = field(
        "simulate", "--reference", str(reference), "--out", str(out), "--reps", str(len(REPS)), "--days", str(DAYS),
        "--end", END.isoformat(), "--seed", "7", "--offline-share", "0.6", "--off-site-share", "0.2",
        "--offline-last-day",
        "--url", url, "--tokens", str(tokens_file),
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["syncs"] > 0, "no rep ever had coverage"
    assert ledger["network_failures"] > 0, "the simulation never met a flaky network"
    assert ledger["off_site_event_ids"], "no off-site capture simulated"
    assert {o["rep_id"] for o in ledger["orders"]} == set(REPS)
    assert {o["outlet_id"] for o in ledger["orders"] if o["rep_id"] == "REP-4"} <= {"O8", "O9"}, "REP-4 left its beat"
    pending, sent, rejected = queue_counts(out)
    assert rejected == 0
    assert pending >= 5, f"too little left offline ({pending}) to kill a sync mid-way"
    assert pending + sent == ledger["events"]

    # One event per request, so the kill lands between the first settled event and the last.
    sync_args = ["sync", str(out), "--url", url, "--tokens", str(tokens_file)]
    still_pending = kill_mid_sync([*sync_args, "--max-events", "1"], out)
    assert still_pending > 0

    resumed = field(*sync_args)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert queue_counts(out) == (0, ledger["events"], 0)

    # Nothing doubled, nothing lost: order-capture accepted exactly the ledger's orders.
    accepted = asyncio.run(accepted_orders(infra.database_url))
    assert sorted(accepted) == sorted(o["event_id"] for o in ledger["orders"])

    api = Api(services, field_tokens)
    days = {"from": (END - timedelta(days=DAYS - 1)).isoformat(), "to": END.isoformat()}
    total_units = ledger["units"]
    api.wait(lambda: api.get("/v1/sales", **days)["total"]["units"] >= total_units, "the simulated orders")
    body = api.get("/v1/sales", **days)
    assert Decimal(str(body["total"]["value"])) == Decimal(ledger["value"])
    assert body["total"]["units"] == total_units
    for distributor, outlets in expected_by_outlet(ledger).items():
        rows = {r["id"]: r for r in api.get("/v1/sales", level="outlet", parent_id=distributor, **days)["rows"]}
        for outlet, want in outlets.items():
            assert Decimal(str(rows[outlet]["value"])) == want["value"], (outlet, rows[outlet])
            assert rows[outlet]["units"] == want["units"], (outlet, rows[outlet])

    # Each batch sent device_time in its body (the device's skewed clock during the simulation; the real clock in
    # the CLI syncs above): order-capture kept device minus server time with each capture's verdict.
    skews = {rep: abs(d["skew_seconds"]) for rep, d in ledger["devices"].items()}
    devices = {d["device_id"]: rep for rep, d in ledger["devices"].items()}

    def seen() -> list[dict[str, Any]]:
        return list(api.get("/v1/field/clock-skew")["devices"])

    api.wait(lambda: {d["device"] for d in seen()} == set(devices), "every device's clock skew")
    for d in seen():
        assert d["max_abs_skew_s"] <= skews[devices[d["device"]]] + 5, d
    # And some device synced during the simulation with a clock visibly off: its skew is the simulated one.
    visibly_off = [d for d in seen() if skews[devices[d["device"]]] > 10]
    assert any(abs(d["max_abs_skew_s"] - skews[devices[d["device"]]]) <= 5 for d in visibly_off), (skews, seen())


def test_status_lists_the_queues(tmp_path: Path) -> None:
    queue_file = tmp_path / "REP-1.sqlite"
    events = [{"event_type": "OrderCaptured", "occurred_at": date.today().isoformat(), "payload": {}}]
    (tmp_path / "e.json").write_text(json.dumps(events))
    enqueued = field(
        "enqueue", str(queue_file), "--file", str(tmp_path / "e.json"), "--device", "REP-1-phone", "--actor", "REP-1"
    )
    assert enqueued.returncode == 0, enqueued.stderr
    shown = field("status", str(tmp_path), "--json")
    assert json.loads(shown.stdout)["REP-1.sqlite"]["pending"] == 1
