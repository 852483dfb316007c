"""The field simulator's plans, attendance and visits (sellthrough_field.fieldday, capture, simulate), without a
server: deterministic per seed, the shares roughly honoured, days that make sense, given plans followed, and the
events it queues valid under the contracts."""

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sellthrough_field.cli import app
from sellthrough_field.fieldday import DEFAULT_NO_ORDER_REASONS, DayMaker, DayPlan, FieldDay, Shares
from sellthrough_field.queue import EventQueue
from sellthrough_field.reference import Outlet, Rep, World, world_from
from sellthrough_field.simulate import Plan, Simulation
from typer.testing import CliRunner

from sellthrough_contracts import parse_event

UTC_ZONE = ZoneInfo("UTC")
SHARES = Shares(
    order_share=0.8,
    off_site_share=0.1,
    absent_share=0.1,
    skip_share=0.15,
    unplanned_share=0.15,
    no_order_reasons=("shop closed", "owner absent"),
)
DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(30)]


def world(outlets_per_beat: int = 10, reps: int = 20) -> World:
    """One distributor, four rotating beats, every rep covering all of them."""
    outlets = {
        f"O{b}-{n}": Outlet(f"O{b}-{n}", "D1", f"B-{b}", 12.9 + n / 1000, 77.5 + b / 1000)
        for b in range(4)
        for n in range(outlets_per_beat)
    }
    return World(
        [Rep(f"REP-{r}", ("D1",), ()) for r in range(reps)],
        outlets,
        {"S1": Decimal("10.50"), "S2": Decimal("4.00")},
    )


def field_days(w: World, seed: int, shares: Shares = SHARES, zone: ZoneInfo = UTC_ZONE) -> list[FieldDay]:
    maker = DayMaker(w, shares, zone, random.Random(seed), "T")
    return [d for rep in w.reps for d in maker.days(rep, DAYS)]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    # Independent of fieldday.moved: an equirectangular approximation, within metres at these distances.
    x = math.radians(b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    y = math.radians(b[0] - a[0])
    return 6_371_000 * math.hypot(x, y)


def test_a_seed_gives_the_same_field_force_and_another_seed_another() -> None:
    w = world()
    assert field_days(w, 5) == field_days(w, 5)
    assert field_days(w, 5) != field_days(w, 6)


def test_the_shares_are_roughly_honoured() -> None:
    days = field_days(world(), 3)
    worked = [d for d in days if not d.absent]
    calls = [c for d in worked for c in d.calls]
    planned_outlets = sum(len(d.plan.outlet_ids) for d in worked if d.plan)
    assert abs(sum(d.absent for d in days) / len(days) - 0.1) < 0.04
    assert abs(1 - sum(c.planned for c in calls) / planned_outlets - 0.15) < 0.04, "skipped planned outlets"
    assert abs(sum(not c.planned for c in calls) / planned_outlets - 0.15) < 0.04, "unplanned calls"
    assert abs(sum(c.productive for c in calls) / len(calls) - 0.8) < 0.04
    assert abs(sum(c.off_site for c in calls) / len(calls) - 0.1) < 0.03
    reasons = {c.no_order_reason for c in calls if not c.productive}
    assert reasons == {"shop closed", "owner absent"}


def test_a_day_follows_its_plan_and_makes_sense() -> None:
    w = world()
    for d in field_days(w, 9):
        assert d.plan is not None
        assert d.plan.source == "simulator"
        if d.absent:
            assert (d.started_at, d.ended_at, d.calls) == (None, None, ())
            continue
        assert d.started_at is not None
        assert d.ended_at is not None
        planned = [c.outlet.outlet_id for c in d.calls if c.planned]
        # Planned calls keep the plan's sequence; unplanned ones are other outlets of the territory.
        assert planned == [o for o in d.plan.outlet_ids if o in planned]
        assert all(c.outlet.outlet_id not in d.plan.outlet_ids for c in d.calls if not c.planned)
        times = [d.started_at] + [t for c in d.calls for t in (c.checked_in_at, c.checked_out_at)] + [d.ended_at]
        assert times == sorted(times)
        assert {t.astimezone(UTC).date() for t in times} == {d.day}
        for c in d.calls:
            assert (c.productive, c.no_order_reason is None) == (True, True) or (
                not c.productive and c.no_order_reason in SHARES.no_order_reasons
            )
            if c.productive:
                assert c.ordered_at is not None
                assert c.checked_in_at <= c.ordered_at <= c.checked_out_at
            away = distance_m((c.check_in.lat, c.check_in.lon), (c.outlet.lat, c.outlet.lon))
            assert 1_990 < away < 8_010 if c.off_site else away < 26
            assert c.verdict == ("off_site" if c.off_site else "on_site")
        assert len({c.visit_id for c in d.calls}) == len(d.calls)


def test_a_long_beat_still_fits_in_the_day_in_the_brands_zone() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    days = field_days(world(outlets_per_beat=150, reps=2), 1, zone=zone)
    for d in days:
        if d.calls and d.ended_at:
            assert d.ended_at.astimezone(zone).date() == d.day
            assert d.ended_at.astimezone(zone).hour < 19


def plan_event(rep: str, day: date, outlets: list[str], occurred_at: datetime) -> dict[str, Any]:
    return {
        "event_type": "BeatPlanned",
        "occurred_at": occurred_at.isoformat(),
        "payload": {"rep_id": rep, "plan_date": day.isoformat(), "outlet_ids": outlets},
    }


def reference(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    w = world(outlets_per_beat=3, reps=2)
    events: list[dict[str, Any]] = [
        {"event_type": "RepRegistered", "payload": {"rep_id": r.rep_id, "distributor_id": "D1"}} for r in w.reps
    ]
    events += [
        {
            "event_type": "OutletRegistered",
            "payload": {
                "outlet_id": o.outlet_id,
                "distributor_id": o.distributor_id,
                "beat_id": o.beat_id,
                "location": {"lat": o.lat, "lon": o.lon},
            },
        }
        for o in w.outlets.values()
    ]
    events += [
        {"event_type": "SkuRegistered", "payload": {"sku_id": s, "list_price": str(p)}} for s, p in w.prices.items()
    ]
    return events + plans


def test_given_plans_are_followed_the_latest_winning_and_other_days_planned_from_beats() -> None:
    day = DAYS[1]
    new_york = ZoneInfo("America/New_York")
    w = world_from(
        reference(
            [
                # Made later (04:00 UTC), though its local time reads earlier than the next one's: it wins, by instant.
                plan_event("REP-0", day, ["O2-1", "O0-0"], datetime(2026, 2, 28, 23, tzinfo=new_york)),
                plan_event("REP-0", day, ["O3-2", "O1-0"], datetime(2026, 3, 1, 2, tzinfo=UTC)),
                plan_event("REP-0", DAYS[2], [], datetime(2026, 2, 28, 18, tzinfo=UTC)),
            ]
        )
    )
    assert w.plans[("REP-0", day)] == ["O2-1", "O0-0"]
    no_skips = Shares(0.5, 0.1, 0.0, 0.0, 0.0, DEFAULT_NO_ORDER_REASONS)
    days = {d.day: d for d in DayMaker(w, no_skips, UTC_ZONE, random.Random(1), "T").days(w.reps[0], DAYS[:3])}
    given, empty, made = days[day], days[DAYS[2]], days[DAYS[0]]
    assert given.plan == DayPlan(("O2-1", "O0-0"), "reference")
    assert [c.outlet.outlet_id for c in given.calls] == ["O2-1", "O0-0"]
    # An empty given plan: a working day with no calls planned, and none made.
    assert (empty.plan, empty.calls) == (DayPlan((), "reference"), ())
    assert empty.started_at is not None
    assert made.plan is not None
    assert made.plan.source == "simulator"


def test_an_admins_geotag_moves_the_outlet_the_simulator_aims_at() -> None:
    geotag = {"event_type": "OutletGeotagged", "payload": {"outlet_id": "O0-0", "lat": 1.5, "lon": 2.5}}
    outlet = world_from([*reference([]), geotag]).outlets["O0-0"]
    assert (outlet.lat, outlet.lon) == (1.5, 2.5)


def queued(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(directory.glob("*.sqlite")):
        with EventQueue(path) as queue:
            for row in queue.pending(100_000):
                yield path.name, json.loads(row.body)


@pytest.mark.parametrize("planner_token", [True, False])
def test_the_queues_hold_valid_events_and_the_ledger_accounts_for_them(tmp_path: Path, planner_token: bool) -> None:
    w = world_from(reference([]))
    tokens = {"admin": "a-token"} if planner_token else {}
    ledger = Simulation(w, Plan(reps=2, days=5, end=DAYS[4], seed=4), tmp_path, None, tokens).run()
    document = json.loads((tmp_path / "ledger.json").read_text())
    events = list(queued(tmp_path))
    assert document["events"] == len(events) == ledger.queued
    for _, raw in events:
        parse_event(raw)  # raises for anything the contracts refuse
    kinds = [raw["event_type"] for _, raw in events]
    assert kinds.count("OrderCaptured") == len(document["orders"])
    assert kinds.count("VisitRecorded") == document["visits"]
    assert kinds.count("DayStarted") == kinds.count("DayEnded") == document["attended_days"]
    plans = [raw for name, raw in events if name == "planner.sqlite"]
    assert len(plans) == (len(document["days"]) if planner_token else 0)
    assert all(raw["event_type"] == "BeatPlanned" for raw in plans)
    assert document["plans"] == ("queued" if planner_token else "ledger-only")
    assert bool(document["notes"]) is not planner_token
    # Each order names its visit, and the visit says it was productive.
    visits = {raw["payload"]["visit_id"]: raw for _, raw in events if raw["event_type"] == "VisitRecorded"}
    for _, raw in events:
        if raw["event_type"] == "OrderCaptured":
            assert visits[raw["payload"]["visit_id"]]["payload"]["productive"] is True
    # Device times: every rep event is stamped with its phone's skew (the ledger keeps what was sent).
    for d in document["days"]:
        for v in d["visits"]:
            assert visits[v["visit_id"]]["payload"]["checked_in_at"] == v["checked_in_at"]


def test_the_cli_simulates_offline_with_its_options_and_refuses_a_share_above_one(tmp_path: Path) -> None:
    reference_file = tmp_path / "reference.json"
    reference_file.write_text(json.dumps(reference([])))
    out = tmp_path / "field"
    args = ["simulate", "--reference", str(reference_file), "--out", str(out), "--days", "3", "--end", "2026-03-05"]
    runner = CliRunner()
    done = runner.invoke(app, [*args, "--no-order-reason", "it rained", "--order-share", "0", "--absent-share", "0"])
    assert done.exit_code == 0, done.output
    ledger = json.loads((out / "ledger.json").read_text())
    visits = [v for d in ledger["days"] for v in d["visits"]]
    assert visits
    assert {v["no_order_reason"] for v in visits} == {"it rained"}
    assert ledger["plans"] == "ledger-only"
    refused = runner.invoke(app, [*args, "--skip-share", "1.5"])
    assert refused.exit_code == 2
    assert "between 0 and 1" in refused.output
