"""The simulated field force against real order-capture and query-api: four reps on device-bound tokens follow
beat plans for three days (the simulator's own, published by the planner's admin token, and two given in the
reference events), start and end their days or stay absent, skip planned outlets and call on unplanned ones, take
orders or give no-order reasons, capture some calls kilometres away, and lose coverage; the rest of the queues goes
with `sellthrough-field sync`. Then what query-api shows must match the simulator's ledger: (a) every off-site
order and visit is flagged off_site and no on-site one is; (b) the field figures equal a recomputation from the
ledger (tests/support/field_recount.py); (c) a rep's day shows its plan in sequence against its visits."""

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sellthrough_field.queue import EventQueue

from sellthrough_devstack.demo import wait_for_masters
from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import (
    DISTRIBUTORS,
    REPS,
    event,
    outlet_on_beat,
    reference_events,
    rep_with_territory,
)
from tests.support.device_tokens import device_bound_tokens
from tests.support.field_recount import from_ledger, recount
from tests.support.services import running_with_reference_data

pytestmark = pytest.mark.e2e

FIELD_REPS = ("REP-1", "REP-2", "REP-3", "REP-4")
HOME = REPS | {"REP-4": "D3"}
DAYS = 3
END = datetime.now(UTC).date() - timedelta(days=1)
FIRST = END - timedelta(days=DAYS - 1)
RANGE = {"from": FIRST.isoformat(), "to": END.isoformat()}
UTC_ZONE = ZoneInfo("UTC")
WAIT = 180.0
"""Seconds to wait for query-api to catch up: generous, since the machine may be shared; a healthy run takes a few."""

# Beyond the test brand: D3 outlets on beats, and REP-4 who works beat B-7 only, so the simulator has routes to
# rotate through and outlets off the day's plan to call on (REP-3 covers B-7, B-8 and the unbeaten O4, O5).
BEAT_EVENTS = [
    outlet_on_beat(outlet, "D3", beat, lat=12.97 + n / 100)
    for n, (outlet, beat) in enumerate((("O8", "B-7"), ("O9", "B-7"), ("O10", "B-8")))
] + [rep_with_territory("REP-4", "D3", beat_ids=("B-7",))]
# Plans the brand already made, given to the simulator with the reference events: REP-1 calls on O2 only on the
# middle day (O1 is then off plan), REP-3 walks O5 then O10 on the first day.
GIVEN_PLANS = [
    event(
        "BeatPlanned",
        {"rep_id": rep, "plan_date": day.isoformat(), "outlet_ids": outlets},
        occurred_at=datetime.combine(FIRST - timedelta(days=1), datetime.min.time(), UTC),
    )
    for rep, day, outlets in (("REP-1", END - timedelta(days=1), ["O2"]), ("REP-3", FIRST, ["O5", "O10"]))
]


@pytest.fixture(scope="module")
def field_tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    """Each rep's token bound to its phone; the planner publishes beat plans with the admin's."""
    return device_bound_tokens(tmp_path_factory.mktemp("field-tokens"), FIELD_REPS)


def field(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sellthrough_field", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def simulated(
    infra: Infra, field_tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, ServiceProcess], dict[str, Any]]]:
    """The services, once the simulated days and the final sync have all reached query-api; and the ledger."""
    with running_with_reference_data(infra, field_tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, field_tokens)
        api.post(BEAT_EVENTS)
        # A plan names registered outlets only: order-capture must know O8-O10 first.
        wait_for_masters(
            running["order-capture"].url, field_tokens.issued["admin"].token, reference_events() + BEAT_EVENTS
        )
        api.post(GIVEN_PLANS)
        work = tmp_path_factory.mktemp("field-simulation")
        reference = work / "reference.json"
        reference.write_text(json.dumps(reference_events() + BEAT_EVENTS + GIVEN_PLANS))
        tokens_file = work / "device-tokens.json"
        tokens_file.write_text(json.dumps({who: field_tokens.issued[who].token for who in (*FIELD_REPS, "admin")}))
        out, url = work / "field", running["order-capture"].url
        run = field(
            "simulate", "--reference", str(reference), "--out", str(out), "--reps", str(len(FIELD_REPS)),
            "--days", str(DAYS), "--end", END.isoformat(), "--seed", "11", "--offline-share", "0.5",
            "--off-site-share", "0.3", "--order-share", "0.6", "--absent-share", "0.2", "--skip-share", "0.25",
            "--unplanned-share", "0.5", "--no-order-reason", "shop closed", "--no-order-reason", "owner absent",
            "--url", url, "--tokens", str(tokens_file),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        synced = field("sync", str(out), "--url", url, "--tokens", str(tokens_file))
        assert synced.returncode == 0, synced.stderr + synced.stdout
        ledger = json.loads((out / "ledger.json").read_text())
        pending = sent = rejected = 0
        for path in out.glob("*.sqlite"):
            with EventQueue(path) as queue:
                counts = queue.counts()
            pending, sent, rejected = pending + counts.pending, sent + counts.sent, rejected + counts.rejected
        assert (pending, sent, rejected) == (0, ledger["events"], 0)

        visits = ledger["visits"]
        captures = visits + len(ledger["orders"])
        planned = sum(len(d["plan"]["outlet_ids"]) for d in ledger["days"] if d["plan"])

        def arrived() -> bool:
            # Every projection the tests read: field (plans, visits, attendance), location checks, sales orders.
            rows = api.get("/v1/field/performance", **RANGE)["rows"]
            checked = api.get("/v1/field/geo-verification")["rows"]
            orders = api.get("/v1/sales/events", limit="1", **RANGE)["total"]["events"]
            return bool(
                sum(r["visits"] for r in rows) == visits
                and sum(r["planned_outlets"] for r in rows) == planned
                and sum(r["attended_days"] for r in rows) == ledger["attended_days"]
                and sum(r["captures"] for r in checked) == captures
                and orders == len(ledger["orders"])
            )

        api.wait(arrived, "the simulated field force", timeout=WAIT)
        yield running, ledger


def called(day: dict[str, Any]) -> set[str]:
    return {v["outlet_id"] for v in day["visits"]}


def test_the_simulation_covers_what_the_figures_count(simulated: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The seed gives every case the checks below rely on; a change of seed or shares must keep them."""
    _, ledger = simulated
    assert ledger["plans"] == "published"
    visits = [v for d in ledger["days"] for v in d["visits"]]
    assert ledger["absent_days"] > 0
    assert any(not v["planned"] for v in visits), "no unplanned visit"
    skipped = [o for d in ledger["days"] if d["visits"] for o in d["plan"]["outlet_ids"] if o not in called(d)]
    assert skipped, "no planned outlet skipped on a day the rep worked"
    assert {v["verdict"] for v in visits} == {"on_site", "off_site"}
    assert any(o["off_site"] for o in ledger["orders"]), "no off-site order"
    assert {v["no_order_reason"] for v in visits if not v["productive"]} == {"shop closed", "owner absent"}
    assert all(v["order_id"] for v in visits if v["productive"])
    assert {d["plan"]["source"] for d in ledger["days"] if d["plan"]} == {"reference", "simulator"}
    assert ledger["syncs"] > 0
    assert ledger["network_failures"] > 0


def test_every_off_site_capture_is_flagged_and_no_on_site_one_is(
    simulated: tuple[dict[str, ServiceProcess], dict[str, Any]], field_tokens: Tokens
) -> None:
    services, ledger = simulated
    api = Api(services, field_tokens)
    # Orders: each one's verdict in the events view.
    shown: dict[str, str | None] = {}
    cursor: dict[str, str] = {}
    while True:
        page = api.get("/v1/sales/events", limit="1000", **RANGE, **cursor)
        shown |= {r["event_id"]: r["location_verdict"] for r in page["rows"]}
        if page["next_cursor"] is None:
            break
        cursor = {"cursor": page["next_cursor"]}
    assert shown == {o["event_id"]: o["verdict"] for o in ledger["orders"]}

    # Visits: the counts per rep and verdict, and each visit's own verdict as query-api keeps it.
    visits = [v for d in ledger["days"] for v in d["visits"]]
    rep_of = {v["event_id"]: d["rep_id"] for d in ledger["days"] for v in d["visits"]}
    want = Counter((rep_of[v["event_id"]], v["verdict"]) for v in visits)
    rows = api.get("/v1/field/geo-verification", by="rep", subject="VisitRecorded")["rows"]
    got = Counter({(r["key"], verdict): r[verdict] for r in rows for verdict in ("on_site", "off_site") if r[verdict]})
    assert got == want
    assert all(r["captures"] == r["on_site"] + r["off_site"] for r in rows)
    # Each visit's own verdict, as its rep's day shows it.
    shown_visits = {
        v["visit_id"]: v["verdict"]
        for d in ledger["days"]
        if d["visits"]
        for v in api.get(f"/v1/field/reps/{d['rep_id']}/days/{d['day']}")["visits"]
    }
    assert shown_visits == {v["visit_id"]: v["verdict"] for v in visits}

    # The alert names exactly the reps with at least the threshold of off-site orders.
    alerts = api.get("/v1/field/off-site-alerts")
    off_site = Counter(o["rep_id"] for o in ledger["orders"] if o["off_site"])
    assert {r["rep_id"]: r["off_site_orders"] for r in alerts["reps"]} == {
        rep: n for rep, n in off_site.items() if n >= alerts["threshold"]
    }


@pytest.mark.parametrize(
    ("group_by", "group_of"),
    [
        ("rep", {rep: rep for rep in FIELD_REPS}),
        ("distributor", HOME),
        ("region", {rep: DISTRIBUTORS[d] for rep, d in HOME.items()}),
    ],
)
def test_field_figures_equal_a_recomputation_from_the_ledger(
    simulated: tuple[dict[str, ServiceProcess], dict[str, Any]],
    field_tokens: Tokens,
    group_by: str,
    group_of: dict[str, str],
) -> None:
    services, ledger = simulated
    rows = {
        r.pop("id"): r
        for r in Api(services, field_tokens).get("/v1/field/performance", group_by=group_by, **RANGE)["rows"]
    }
    want = recount(from_ledger(ledger, UTC_ZONE), group_of.get, UTC_ZONE)
    assert rows.keys() == want.keys()
    for group, figures in want.items():
        row = rows[group]
        row.pop("name")
        for share in ("beat_compliance", "productive_share"):
            row[share] = None if row[share] is None else Decimal(str(row[share]))
        assert row == figures.row(), group


def test_a_reps_day_shows_the_plan_in_sequence_against_its_visits(
    simulated: tuple[dict[str, ServiceProcess], dict[str, Any]], field_tokens: Tokens
) -> None:
    services, ledger = simulated
    api = Api(services, field_tokens)
    days = [d for d in ledger["days"] if d["plan"] and d["plan"]["outlet_ids"]]
    assert any(d["plan"]["source"] == "reference" for d in days)
    for d in days:
        body = api.get(f"/v1/field/reps/{d['rep_id']}/days/{d['day']}")
        plan, visits = d["plan"]["outlet_ids"], sorted(d["visits"], key=lambda v: v["checked_in_at"])
        called = {v["outlet_id"] for v in visits}
        assert [(p["sequence"], p["outlet_id"], p["visited"]) for p in body["planned"]] == [
            (n, outlet, outlet in called) for n, outlet in enumerate(plan, start=1)
        ], d
        assert [
            (v["visit_id"], v["planned"], v["productive"], v["no_order_reason"], [o["order_id"] for o in v["orders"]])
            for v in body["visits"]
        ] == [
            (
                v["visit_id"],
                v["planned"],
                v["productive"],
                v["no_order_reason"],
                [v["order_id"]] if v["order_id"] else [],
            )
            for v in visits
        ], d
        assert [v["minutes_spent"] for v in body["visits"]] == [v["minutes_at_outlet"] for v in visits]
        assert (body["started_at"] is None) is (d["attendance"] == "absent")
