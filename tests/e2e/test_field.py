"""Visits, beat plans and attendance through real order-capture, broker and query-api processes.

A seeded field force (REP-1..3, their home distributors D1..D3 in regions R1, R2 in Z1 and R3 in Z2) is planned,
visits outlets, takes orders on some visits and starts some days; the figures query-api reports per rep,
distributor and region must equal a recomputation here from the events posted, written independently of
query_api.figures.field.
"""

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sellthrough_devstack.services import ServiceProcess
from tests.conftest import Infra, Tokens
from tests.support.api import Api
from tests.support.brand import DISTRIBUTORS, OUTLETS, REPS, event, order
from tests.support.services import running_with_reference_data

pytestmark = pytest.mark.e2e

TODAY = datetime.now(UTC).date()
DAYS = [TODAY - timedelta(days=n) for n in (4, 3, 2, 1)]
RANGE = {"from": DAYS[0].isoformat(), "to": DAYS[-1].isoformat()}
OUTSIDE_RANGE = TODAY - timedelta(days=6)
"""Where the tests that post more leave their events, out of the figures' way."""
REASONS = ["stock sufficient", "shop closed", "owner absent"]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class PostedVisit:
    rep: str
    day: date
    outlet: str
    visit_id: str
    checked_in: datetime
    checked_out: datetime
    productive: bool


@dataclass
class Ledger:
    """What the test posted, as the figures need it."""

    plans: dict[tuple[str, date], list[str]]
    visits: list[PostedVisit]
    started: set[tuple[str, date]]
    orders: dict[str, str]
    """visit id -> order id"""


def visit_event(v: PostedVisit, reason: str | None) -> dict[str, Any]:
    payload = {
        "visit_id": v.visit_id,
        "outlet_id": v.outlet,
        "distributor_id": OUTLETS[v.outlet],
        "rep_id": v.rep,
        "productive": v.productive,
        "no_order_reason": reason,
        "gps": {"lat": 28.6, "lon": 77.2, "accuracy_m": 8.0},
        "checked_in_at": v.checked_in.isoformat(),
        "checked_out_at": v.checked_out.isoformat(),
        "check_out_gps": {"lat": 28.6, "lon": 77.2, "accuracy_m": 9.0},
        "mock_location": False,
    }
    return event("VisitRecorded", payload, actor=v.rep, occurred_at=v.checked_out)


def plan_event(rep: str, day: date, outlets: list[str], occurred_at: datetime) -> dict[str, Any]:
    return event(
        "BeatPlanned", {"rep_id": rep, "plan_date": day.isoformat(), "outlet_ids": outlets}, occurred_at=occurred_at
    )


def attendance(kind: str, rep: str, at_: datetime) -> dict[str, Any]:
    payload = {"rep_id": rep, "gps": {"lat": 28.61, "lon": 77.21, "accuracy_m": 15.0}, "mock_location": False}
    return event(kind, payload, actor=rep, occurred_at=at_)


def field_force(rng: random.Random) -> tuple[Ledger, list[dict[str, Any]]]:
    """Plans, visits (some repeated, some off plan), orders on productive visits, and attendance."""
    ledger = Ledger({}, [], set(), {})
    events: list[dict[str, Any]] = []
    outlets = sorted(OUTLETS)
    for rep in sorted(REPS):
        for day in DAYS:
            if rng.random() < 0.8:
                plan = rng.sample(outlets, rng.randint(1, 4))
                # A first plan, replaced by a later one posted before it: the later occurred_at wins.
                events.append(plan_event(rep, day, plan, at(day, 6, 30)))
                events.insert(0, plan_event(rep, day, rng.sample(outlets, 2), at(day, 6, 0)))
                ledger.plans[(rep, day)] = plan
            if rng.random() < 0.7:
                ledger.started.add((rep, day))
                events.append(attendance("DayStarted", rep, at(day, 8, rng.randint(0, 59))))
                events.append(attendance("DayEnded", rep, at(day, 18, rng.randint(0, 59))))
            minute = 9 * 60
            for outlet in rng.choices(outlets, k=rng.randint(0, 4)):
                minute += rng.randint(10, 90)
                spent = rng.randint(5, 40)
                v = PostedVisit(
                    rep,
                    day,
                    outlet,
                    f"V-{uuid.uuid4().hex[:10]}",
                    at(day, minute // 60, minute % 60),
                    at(day, minute // 60, minute % 60) + timedelta(minutes=spent),
                    rng.random() < 0.6,
                )
                minute += spent
                ledger.visits.append(v)
                events.append(visit_event(v, None if v.productive else rng.choice(REASONS)))
                if v.productive:
                    captured = order(outlet, [("S1", 2)], occurred_at=v.checked_in + timedelta(minutes=3), rep_id=rep)
                    captured["payload"]["visit_id"] = v.visit_id
                    ledger.orders[v.visit_id] = captured["payload"]["order_id"]
                    events.append(captured)
    return ledger, events


LEDGER, EVENTS = field_force(random.Random(16))


def expected(group_of: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The figures per group, recomputed from the ledger."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"planned": 0, "hit": 0, "visits": 0, "productive": 0, "unplanned": 0, "attended": 0, "absent": 0}
    )
    rep_days = set(LEDGER.plans) | {(v.rep, v.day) for v in LEDGER.visits} | LEDGER.started
    for rep, day in rep_days:
        figures = out[group_of[rep]]
        plan = LEDGER.plans.get((rep, day), [])
        calls = [v for v in LEDGER.visits if (v.rep, v.day) == (rep, day)]
        figures["planned"] += len(plan)
        figures["hit"] += len([o for o in plan if any(v.outlet == o for v in calls)])
        figures["visits"] += len(calls)
        figures["productive"] += len([v for v in calls if v.productive])
        figures["unplanned"] += len([v for v in calls if v.outlet not in plan])
        figures["attended"] += (rep, day) in LEDGER.started
        figures["absent"] += bool(plan) and (rep, day) not in LEDGER.started
    return dict(out)


def share(part: int, whole: int) -> Decimal | None:
    return None if whole == 0 else (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"))


@pytest.fixture(scope="module")
def services(infra: Infra, tokens: Tokens) -> Iterator[dict[str, ServiceProcess]]:
    with running_with_reference_data(infra, tokens, ["order-capture", "query-api"]) as running:
        api = Api(running, tokens)
        api.post(EVENTS)
        visits = len(LEDGER.visits)
        api.wait(
            lambda: (
                sum(r["visits"] for r in api.get("/v1/field/performance", **RANGE)["rows"]) == visits
                and sum(r["planned_outlets"] for r in api.get("/v1/field/performance", **RANGE)["rows"])
                == sum(len(p) for p in LEDGER.plans.values())
            ),
            "the field events",
        )
        yield running


def read(services: dict[str, ServiceProcess], tokens: Tokens, who: str, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{services['query-api'].url}{path}", params=params, headers=tokens.header(who), timeout=10)


@pytest.mark.parametrize(
    ("group_by", "group_of"),
    [
        ("rep", {rep: rep for rep in REPS}),
        ("distributor", dict(REPS)),
        ("region", {rep: DISTRIBUTORS[d] for rep, d in REPS.items()}),
    ],
)
def test_figures_equal_a_recomputation_from_the_events_posted(
    services: dict[str, ServiceProcess], tokens: Tokens, group_by: str, group_of: dict[str, str]
) -> None:
    response = read(services, tokens, "analyst", "/v1/field/performance", group_by=group_by, **RANGE)
    assert response.status_code == 200, response.text
    rows = {r["id"]: r for r in response.json()["rows"]}
    want = expected(group_of)
    assert rows.keys() == want.keys()
    assert sum(w["absent"] for w in want.values()) > 0, "the seed must give absent days to check"
    assert sum(w["unplanned"] for w in want.values()) > 0, "the seed must give unplanned visits to check"
    for group, w in want.items():
        row = rows[group]
        got = (
            row["planned_outlets"],
            row["planned_visited"],
            row["visits"],
            row["productive_visits"],
            row["unplanned_visits"],
            row["attended_days"],
            row["absent_days"],
        )
        assert got == (w["planned"], w["hit"], w["visits"], w["productive"], w["unplanned"], w["attended"], w["absent"])
        assert (Decimal(row["beat_compliance"]) if row["beat_compliance"] else None) == share(w["hit"], w["planned"])
        assert (Decimal(row["productive_share"]) if row["productive_share"] else None) == share(
            w["productive"], w["visits"]
        )


def test_a_reps_day_shows_the_plan_in_sequence_against_the_visits_in_check_in_order(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    rep, day = next((v.rep, v.day) for v in LEDGER.visits if (v.rep, v.day) in LEDGER.plans and v.productive)
    response = read(services, tokens, "analyst", f"/v1/field/reps/{rep}/days/{day.isoformat()}")
    assert response.status_code == 200, response.text
    body = response.json()
    plan = LEDGER.plans[(rep, day)]
    calls = sorted((v for v in LEDGER.visits if (v.rep, v.day) == (rep, day)), key=lambda v: v.checked_in)
    assert [p["outlet_id"] for p in body["planned"]] == plan
    assert [p["sequence"] for p in body["planned"]] == list(range(1, len(plan) + 1))
    assert [p["visited"] for p in body["planned"]] == [any(v.outlet == o for v in calls) for o in plan]
    assert [v["visit_id"] for v in body["visits"]] == [v.visit_id for v in calls]
    for got, posted in zip(body["visits"], calls, strict=True):
        assert got["minutes_spent"] == round((posted.checked_out - posted.checked_in).total_seconds() / 60)
        assert got["planned"] is (posted.outlet in plan)
        assert [o["order_id"] for o in got["orders"]] == ([LEDGER.orders[posted.visit_id]] if posted.productive else [])
        assert (got["lat"], got["lon"]) == (28.6, 77.2)
    assert (body["started_at"] is not None) is ((rep, day) in LEDGER.started)


def test_a_visit_without_an_order_needs_a_configured_reason(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    day = OUTSIDE_RANGE
    base = PostedVisit("REP-1", day, "O1", "V-REASON", at(day, 12), at(day, 12, 10), False)
    posted = [visit_event(base, None), visit_event(base, "it was raining"), visit_event(base, "Shop Closed")]
    response = httpx.post(
        f"{services['order-capture'].url}/v1/events",
        json={"events": posted},
        headers=tokens.header("rep1"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("rejected", "no_order_reason_required"),
        ("rejected", "unknown_no_order_reason"),
        ("accepted", None),
    ]


def test_a_rep_starts_only_its_own_day_and_a_manager_may_not_plan(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    url = f"{services['order-capture'].url}/v1/events"
    own = httpx.post(
        url, json={"events": [attendance("DayStarted", "REP-1", at(OUTSIDE_RANGE, 8))]}, headers=tokens.header("rep1")
    )
    assert own.status_code == 200, own.text
    assert own.json()["accepted"] == 1
    other = httpx.post(
        url,
        json={"events": [attendance("DayStarted", "REP-2", at(TODAY, 8)) | {"actor": "REP-1"}]},
        headers=tokens.header("rep1"),
    )
    assert other.status_code == 403
    plan = plan_event("REP-1", TODAY, ["O1"], at(TODAY, 6)) | {"actor": "RM-Z1"}
    manager = httpx.post(url, json={"events": [plan]}, headers=tokens.header("manager_z1"))
    assert manager.status_code == 403


def test_reads_are_scoped_to_the_reps_of_the_callers_territory(
    services: dict[str, ServiceProcess], tokens: Tokens
) -> None:
    by_rep = {"manager_z1": {"REP-1", "REP-2"}, "manager_r3": {"REP-3"}, "distributor1": {"REP-1"}, "rep1": {"REP-1"}}
    for who, reps in by_rep.items():
        response = read(services, tokens, who, "/v1/field/performance", group_by="rep", **RANGE)
        assert response.status_code == 200, (who, response.text)
        assert {r["id"] for r in response.json()["rows"]} <= reps, who
    day = DAYS[-1].isoformat()
    assert read(services, tokens, "manager_r3", f"/v1/field/reps/REP-1/days/{day}").status_code == 403
    assert read(services, tokens, "rep1", f"/v1/field/reps/REP-2/days/{day}").status_code == 403
    assert read(services, tokens, "manager_z1", f"/v1/field/reps/REP-2/days/{day}").status_code == 200
    assert read(services, tokens, "analyst", f"/v1/field/reps/REP-9/days/{day}").status_code == 404
    assert read(services, tokens, "distributor1", "/v1/field/performance", group_by="region").status_code == 403
