"""The field force's part of the demo: the reps' last days are captured by `sellthrough-field`'s simulator into
one queue per phone under .dev/field/, then each phone syncs its queue to order-capture with its own device-bound
token, as a phone coming back into coverage would (README, "make dev").

The simulator runs without a URL, so every phone stays out of coverage while it captures: syncing inside the
simulation opens a connection per call and took minutes for a week of 100 reps, and it would change nothing the
projections keep (a past day's events are recorded now, whenever the phone syncs). The phones then sync together.
"""

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sellthrough_field.backoff import Backoff, Retryable
from sellthrough_field.queue import EventQueue
from sellthrough_field.reference import World, world_from
from sellthrough_field.simulate import Plan, Simulation, route_for
from sellthrough_field.sync import Limits, Syncer, SyncError, client_for

FIELD_DAYS = 7
"""A week: every beat weekday once. order-capture takes a rep's events up to 45 days old."""
PHONES_AT_ONCE = 8
"""Phones syncing at the same time: enough to keep order-capture's two workers busy, few enough for 2 cores."""
BATCH_EVENTS = 200
"""Events per request: a phone's batch, well under order-capture's 1,000."""


def rep_ids(reference: Sequence[dict[str, Any]]) -> list[str]:
    """Every rep of the demo: each gets a phone and a token bound to it."""
    return sorted({e["payload"]["rep_id"] for e in reference if e["event_type"] == "RepRegistered"})


def planned_calls(world: World, plan: Plan) -> int:
    """Outlet calls on the reps' beats over the plan's days, as the simulator walks them (route_for)."""
    calls = 0
    for rep in world.reps[: plan.reps]:
        routes = list(world.beats_of(rep).items())
        if not routes:
            continue
        for index in range(plan.days):
            calls += len(route_for(routes, plan.end - timedelta(days=plan.days - 1 - index), index))
    return calls


def field_plan(world: World, days: int, end: date, orders_wanted: int, seed: int) -> Plan:
    """The simulator's plan for the demo's field days. Its order share is set so the week has about as many orders
    as the history would have had on those days (`orders_wanted`): the dashboards' trend carries on."""
    plan = Plan(reps=len(world.reps), days=days, end=end, seed=seed)
    calls = planned_calls(world, plan)
    share = orders_wanted / calls if calls else plan.order_share
    return Plan(reps=plan.reps, days=days, end=end, seed=seed, order_share=min(1.0, max(0.05, share)))


@dataclass
class PhoneSync:
    """What one phone's sync settled, and the order lines order-capture now holds from its queue."""

    queue: str
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    lines: int = 0
    orders: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class FieldLoad:
    phones: list[PhoneSync]
    simulated: bool
    """False when the queues were already there (`make dev` run again): only what was pending was synced."""
    ledger: Path

    @property
    def counts(self) -> dict[str, int]:
        return {k: sum(getattr(p, k) for p in self.phones) for k in ("accepted", "duplicate", "rejected")}

    @property
    def lines(self) -> int:
        return sum(p.lines for p in self.phones)

    @property
    def orders(self) -> int:
        return sum(p.orders for p in self.phones)

    @property
    def problems(self) -> list[str]:
        return [problem for p in self.phones for problem in p.problems]


def simulate(out: Path, reference: list[dict[str, Any]], plan: Plan, tokens: dict[str, str]) -> None:
    """Capture the plan's days on every rep's phone queue (out/<rep>.sqlite) and write out/ledger.json."""
    out.mkdir(parents=True, exist_ok=True)
    # `tokens` as the simulator takes them (rep -> device token, `admin` for what only an admin may post); with no
    # URL nothing is sent from here.
    Simulation(world_from(reference), plan, out, None, tokens).run()


def sync_phone(path: Path, url: str, tokens: dict[str, str], skews: dict[str, float]) -> PhoneSync:
    result = PhoneSync(path.name)
    with EventQueue(path) as queue:
        actor = queue.meta("actor") or ""
        token = tokens.get(actor)
        if token is None:
            result.problems.append(f"{path.name}: no token for '{actor}'")
            return result
        with client_for(url, token) as client:
            syncer = Syncer(
                queue,
                client,
                limits=Limits(max_events=BATCH_EVENTS),
                backoff=Backoff(base_seconds=0.2, max_seconds=5, max_attempts=6),
                clock_skew=timedelta(seconds=skews.get(actor, 0.0)),
            )
            try:
                report = syncer.sync()
            except (Retryable, SyncError) as error:
                result.problems.append(f"{path.name}: not synced, its events stay queued ({error})")
                report = None
        if report is not None:
            result.accepted, result.duplicate, result.rejected = report.accepted, report.duplicate, report.rejected
        result.problems += [f"{r.event_type} {r.event_id}: {r.reason} ({r.detail})" for r in queue.rejected()]
        for event_id, (state, _) in queue.states().items():
            body = queue.body_of(event_id) if state == "sent" else None
            event = json.loads(body) if body else {}
            if event.get("event_type") == "OrderCaptured":
                result.orders += 1
                result.lines += len(event["payload"]["lines"])
    return result


def load(
    out: Path,
    reference: list[dict[str, Any]],
    plan: Plan,
    url: str,
    tokens: dict[str, str],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> FieldLoad:
    """Simulate the plan into the phones' queues unless they exist already, then sync every queue. `progress` is
    called with (phones synced, phones) as they finish."""
    simulated = not any(out.glob("*.sqlite"))
    if simulated:
        simulate(out, reference, plan, tokens)
    ledger = out / "ledger.json"
    devices = json.loads(ledger.read_text()).get("devices", {}) if ledger.exists() else {}
    skews = {rep: float(d.get("skew_seconds", 0)) for rep, d in devices.items()}
    queues = sorted(out.glob("*.sqlite"))
    phones: list[PhoneSync] = []
    with ThreadPoolExecutor(PHONES_AT_ONCE) as pool:
        for phone in pool.map(lambda path: sync_phone(path, url, tokens, skews), queues):
            phones.append(phone)
            progress(len(phones), len(queues))
    return FieldLoad(phones, simulated, ledger)
