"""A field force for N reps over D days. Each rep follows the day's beat plan (a BeatPlanned from the reference
events, else one the simulator makes from the rep's beats and publishes with the planner's token), starts and ends
its day (or is absent), calls on outlets (skipping some planned ones, calling on some unplanned ones), takes an
order or gives a no-order reason at each, loses the network now and then (its queue grows, then syncs), sometimes
captures away from the outlet, and has its own clock skew. The simulator writes each device's queue and its own
ledger of what was captured, so a test can hold the server's figures against it.

The days are decided first (fieldday.py, from the seed alone); the network (coverage, lost requests and answers)
draws from a second random stream, so what a rep did does not depend on how the syncs went."""

import contextlib
import json
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from sellthrough_field.backoff import Backoff, Retryable
from sellthrough_field.capture import Phone
from sellthrough_field.fieldday import DEFAULT_NO_ORDER_REASONS, DayMaker, FieldDay, Shares, moved, route_for
from sellthrough_field.flaky import FlakyTransport
from sellthrough_field.ids import new_event_id
from sellthrough_field.ledger import Ledger
from sellthrough_field.queue import EventQueue
from sellthrough_field.reference import Rep, World
from sellthrough_field.sync import Limits, Syncer, client_for

__all__ = ["Ledger", "Plan", "Simulation", "device_of", "moved", "route_for"]

PLANNER_QUEUE = "planner.sqlite"
PLANNER_SOURCE = "beat-planner"


@dataclass(frozen=True)
class Plan:
    reps: int
    days: int
    end: date
    seed: int = 1
    order_share: float = 0.8
    """Share of visits that produce an order."""
    off_site_share: float = 0.1
    """Share of visits (and their orders) captured kilometres away from the outlet."""
    offline_share: float = 0.4
    """Chance that a rep is out of coverage after a call; coverage returns with the same chance inverted."""
    lost_request_share: float = 0.1
    lost_answer_share: float = 0.1
    max_skew_seconds: int = 120
    batch_events: int = 1000
    offline_last_day: bool = False
    """Every rep spends the last day out of coverage: its whole day waits in the queue for `sellthrough-field sync`."""
    absent_share: float = 0.1
    """Share of planned working days a rep never starts: no events at all that day."""
    skip_share: float = 0.15
    """Share of planned outlets not called on."""
    unplanned_share: float = 0.15
    """Chance, at each planned outlet, of also calling on an outlet of the territory the plan left out."""
    no_order_reasons: tuple[str, ...] = DEFAULT_NO_ORDER_REASONS
    """What a visit without an order gives as its reason: order-capture's SELLTHROUGH_NO_ORDER_REASONS."""
    planner: str = "admin"
    """The key of the planner's (admin) token in `tokens`: it publishes the plans the simulator makes."""
    timezone: str = "UTC"
    """The brand's business time zone: days start at 08:30-09:10 there."""

    def shares(self) -> Shares:
        return Shares(
            self.order_share,
            self.off_site_share,
            self.absent_share,
            self.skip_share,
            self.unplanned_share,
            self.no_order_reasons,
        )


def device_of(rep_id: str) -> str:
    return f"{rep_id}-phone"


class Simulation:
    def __init__(self, world: World, plan: Plan, out: Path, url: str | None, tokens: dict[str, str]) -> None:
        self.world = world
        self.plan = plan
        self.out = out
        self.url = url
        self.tokens = tokens
        self.rng = random.Random(plan.seed)
        """The network's stream: coverage, skews, lost requests and answers."""
        self.ledger = Ledger()

    def run(self) -> Ledger:
        reps = self.world.reps[: self.plan.reps]
        maker = DayMaker(
            self.world,
            self.plan.shares(),
            ZoneInfo(self.plan.timezone),
            random.Random(f"days-{self.plan.seed}"),
            # Visit ids differ between runs (a second run adds visits rather than replacing the first's).
            new_event_id().hex[-8:],
        )
        dates = [self.plan.end - timedelta(days=self.plan.days - 1 - i) for i in range(self.plan.days)]
        days = {rep.rep_id: maker.days(rep, dates) for rep in reps}
        plan_ids = self._publish_plans([d for rep in reps for d in days[rep.rep_id]])
        for rep in reps:
            self._rep(rep, days[rep.rep_id], plan_ids)
        (self.out / "ledger.json").write_text(json.dumps(self.ledger.document(), indent=2))
        return self.ledger

    def _publish_plans(self, days: list[FieldDay]) -> dict[tuple[str, date], str]:
        """Queue the plans the simulator made as BeatPlanned, posted by the planner, before any rep's day."""
        made = [(d, d.plan) for d in days if d.plan is not None and d.plan.source == "simulator"]
        planner = self.plan.planner
        if not made:
            return {}
        if planner not in self.tokens:
            self.ledger.plans = "ledger-only"
            self.ledger.notes.append(
                f"no token for the planner '{planner}' (BeatPlanned is admin-only): the {len(made)} plans the "
                "simulator made are in this ledger only, and query-api counts no plan, compliance or absence for them"
            )
            return {}
        zone = ZoneInfo(self.plan.timezone)
        ids: dict[tuple[str, date], str] = {}
        with EventQueue(self.out / PLANNER_QUEUE) as queue:
            queue.set_meta("device_id", PLANNER_SOURCE)
            queue.set_meta("actor", planner)
            for d, plan in made:
                event_id = str(new_event_id())
                queue.enqueue(
                    {
                        "event_id": event_id,
                        "event_type": "BeatPlanned",
                        # Planned the evening before, in the brand's zone.
                        "occurred_at": datetime.combine(d.day - timedelta(days=1), time(18), zone).isoformat(),
                        "source": PLANNER_SOURCE,
                        "actor": planner,
                        "payload": {
                            "rep_id": d.rep_id,
                            "plan_date": d.day.isoformat(),
                            "outlet_ids": list(plan.outlet_ids),
                        },
                    }
                )
                ids[(d.rep_id, d.day)] = event_id
            self.ledger.queued += len(made)
            self.ledger.plans = "queued"
            if self.url is not None:
                self._sync(queue, timedelta(0), flaky=False)
                counts = queue.counts()
                if counts.rejected:
                    self.ledger.plans = "rejected"
                    self.ledger.notes.append(f"order-capture rejected {counts.rejected} plans: see `status {self.out}`")
                elif counts.pending == 0:
                    self.ledger.plans = "published"
        return ids

    def _rep(self, rep: Rep, days: list[FieldDay], plan_ids: dict[tuple[str, date], str]) -> None:
        device = device_of(rep.rep_id)
        skew = timedelta(seconds=self.rng.randint(-self.plan.max_skew_seconds, self.plan.max_skew_seconds))
        path = self.out / f"{rep.rep_id}.sqlite"
        self.ledger.devices[rep.rep_id] = {
            "device_id": device,
            "skew_seconds": skew.total_seconds(),
            "queue": path.name,
        }
        if not days:
            return
        phone = Phone(rep.rep_id, device, skew, self.world.prices)
        with EventQueue(path) as queue:
            queue.set_meta("device_id", device)
            queue.set_meta("actor", rep.rep_id)
            online = True
            for d in days:
                captured = phone.day(d, plan_ids.get((d.rep_id, d.day)))
                self.ledger.days.append(captured.entry)
                self.ledger.orders += captured.orders
                offline_today = self.plan.offline_last_day and d.day == self.plan.end
                for step in captured.steps:
                    for event in step:
                        queue.enqueue(event)
                    self.ledger.queued += len(step)
                    # Coverage comes and goes between calls; while offline the queue only grows.
                    online = self.rng.random() >= self.plan.offline_share if online else self.rng.random() < 0.5
                    if online and not offline_today:
                        self._sync(queue, skew)
            # The last stretch of the day ends offline as often as not: `sellthrough-field sync` sends the rest.

    def _sync(self, queue: EventQueue, skew: timedelta, *, flaky: bool = True) -> None:
        actor = queue.meta("actor")
        if self.url is None or actor is None or actor not in self.tokens:
            return
        transport: httpx.BaseTransport = httpx.HTTPTransport()
        if flaky:
            transport = FlakyTransport(transport, self.rng, self.plan.lost_request_share, self.plan.lost_answer_share)
        with client_for(self.url, self.tokens[actor], transport) as client:
            syncer = Syncer(
                queue,
                client,
                limits=Limits(max_events=self.plan.batch_events),
                backoff=Backoff(base_seconds=0.02, max_seconds=0.5, max_attempts=12),
                clock_skew=skew,
            )
            # Still no signal after the retries: the events wait for the next coverage.
            with contextlib.suppress(Retryable):
                syncer.sync()
        self.ledger.syncs += 1
        if isinstance(transport, FlakyTransport):
            self.ledger.network_failures += transport.failures
