"""Scenario 7, the cost of location verification. The same orders are posted (admin, closed loop, as scenario 1) in
three forms, in interleaved rounds so that neither drift nor a growing database favours one:

- `gps`: with the device's GPS a few metres from the outlet (verdict on_site, a LocationChecked outbox row);
- `no_gps`: without GPS. order-capture still judges them (verdict no_gps) and still writes their LocationChecked;
- `unchecked`: with GPS, posted to order-capture with its location check taken out (bench/unchecked_order_capture.py:
  no outlet places read, no verdict, no LocationChecked row) on the same database and broker.

gps / no_gps is what a GPS fix costs; gps / unchecked is what verification costs in all. Order ids differ between
the forms (order-capture accepts one event per order id)."""

import asyncio
import copy
import sys
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
from rich.progress import Progress

from bench.data import OrderFactory, batches, http_body, lines_of
from bench.http_load import Body, LoadReport, closed_loop
from bench.infra import Infra
from bench.ingest import WARM_UP_BODIES, describe
from bench.results import Result
from sellthrough_devstack.processes import free_port, port_open, spawn, stop_pid, wait_until
from sellthrough_devstack.services import ServiceProcess

FORMS = ("gps", "no_gps", "unchecked")
_LOCATION_CHECKED_ROWS = "SELECT count(*) FROM order_capture.outbox WHERE event_type = 'LocationChecked'"
_UNPUBLISHED = (
    "SELECT count(*) FROM order_capture.outbox "
    "WHERE seq > (SELECT published_through FROM order_capture.outbox_progress)"
)


@dataclass(frozen=True)
class LocationParams:
    events: int
    """Orders per form."""
    rounds: int
    batch: int
    clients: int


def outlet_places(reference: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    return {
        e["payload"]["outlet_id"]: (e["payload"]["location"]["lat"], e["payload"]["location"]["lon"])
        for e in reference
        if e["event_type"] == "OutletRegistered"
    }


def forms_of(order: dict[str, Any], places: dict[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """The order in each form: new ids, the same outlet, lines and time."""
    lat, lon = places[order["payload"]["outlet_id"]]
    out = {}
    for n, form in enumerate(FORMS):
        event = copy.deepcopy(order)
        event["event_id"] = event["event_id"][:-1] + str(n)
        event["payload"]["order_id"] = f"{order['payload']['order_id']}-{n}"
        # About 10 m from the outlet with an 8 m fix: on site by every channel's radius.
        has_gps = form != "no_gps"
        event["payload"]["gps"] = {"lat": lat + 0.0001, "lon": lon, "accuracy_m": 8.0} if has_gps else None
        out[form] = event
    return out


def build(factory: OrderFactory, places: dict[str, tuple[float, float]], today: date, p: LocationParams) -> Any:
    """Per form: warm-up bodies and one list of bodies per round."""
    orders = [factory.past_order(today, 90, 31) for _ in range(p.events + WARM_UP_BODIES * p.batch)]
    per_form: dict[str, list[dict[str, Any]]] = {form: [] for form in FORMS}
    for order in orders:
        for form, event in forms_of(order, places).items():
            per_form[form].append(event)
    bodies = {
        form: [Body(http_body(chunk), len(chunk), lines_of(chunk)) for chunk in batches(events, p.batch)]
        for form, events in per_form.items()
    }
    warm = {form: b[:WARM_UP_BODIES] for form, b in bodies.items()}
    timed = {form: b[WARM_UP_BODIES:] for form, b in bodies.items()}
    size = -(-len(next(iter(timed.values()))) // p.rounds)
    rounds = {form: [b[i * size : (i + 1) * size] for i in range(p.rounds)] for form, b in timed.items()}
    return warm, rounds


def start_unchecked(infra: Infra, database_url: str, bootstrap: str) -> tuple[Any, str]:
    port = free_port()
    log_file = infra.work_dir / "order-capture-unchecked.log"
    env = {**infra.service_env(database_url, bootstrap), "SELLTHROUGH_HTTP_PORT": str(port)}
    env["SELLTHROUGH_HTTP_HOST"] = "127.0.0.1"
    process = spawn([sys.executable, "-m", "bench.unchecked_order_capture"], log_file, env)
    infra.memory.watch("order-capture, location check taken out", process.pid)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: port_open(port) and _ready(url), 120, "order-capture (unchecked)", log_file)
    return process, url


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


async def drained(database_url: str, timeout: float = 600) -> float:
    """Wait until order-capture's relay has published its whole outbox; returns the seconds waited. A scenario
    starts only then: a backlog left by the one before would take CPU from whichever form came first."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url)
    try:
        while await conn.fetchval(_UNPUBLISHED):
            if time.monotonic() - started > timeout:
                raise TimeoutError("order-capture's relay did not publish its outbox in time")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return time.monotonic() - started


async def location_rows(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(_LOCATION_CHECKED_ROWS))
    finally:
        await conn.close()


async def run(
    infra: Infra,
    order_capture: ServiceProcess,
    database_url: str,
    bootstrap: str,
    factory: OrderFactory,
    reference: list[dict[str, Any]],
    today: date,
    p: LocationParams,
) -> list[Result]:
    warm, rounds = build(factory, outlet_places(reference), today, p)
    process, unchecked_url = start_unchecked(infra, database_url, bootstrap)
    try:
        urls = {"gps": order_capture.url, "no_gps": order_capture.url, "unchecked": unchecked_url}
        header = infra.header("admin")
        for form in FORMS:
            await closed_loop(urls[form], header, warm[form], clients=p.clients, seconds=60)
        reports: dict[str, list[LoadReport]] = {form: [] for form in FORMS}
        rows: dict[str, int] = dict.fromkeys(FORMS, 0)
        publishing: dict[str, float] = dict.fromkeys(FORMS, 0.0)
        await drained(database_url)
        with Progress() as progress:
            task = progress.add_task("location: rounds of gps / no_gps / unchecked", total=p.rounds * len(FORMS))
            for n in range(p.rounds):
                # Rotated each round: no form always goes first (or last) into a database that keeps growing.
                for form in FORMS[n % 3 :] + FORMS[: n % 3]:
                    before = await location_rows(database_url)
                    reports[form].append(
                        await closed_loop(urls[form], header, rounds[form][n], clients=p.clients, seconds=600)
                    )
                    # The relay's share of the cost: publishing what this round wrote (twice the rows with a check).
                    publishing[form] += await drained(database_url)
                    rows[form] += await location_rows(database_url) - before
                    progress.advance(task)
    finally:
        infra.memory.unwatch("order-capture, location check taken out")
        stop_pid(process.pid)
        process.wait(timeout=10)

    def rate(form: str) -> float:
        return sum(r.accepted_lines for r in reports[form]) / sum(r.seconds for r in reports[form])

    def published_rate(form: str) -> float:
        """Lines accepted / (posting time + the time the relay then took to publish the rest)."""
        return sum(r.accepted_lines for r in reports[form]) / (sum(r.seconds for r in reports[form]) + publishing[form])

    details: dict[str, Any] = {
        "orders_per_form": p.events,
        "rounds": p.rounds,
        "location_checked_rows_written": rows,
        "published_lines_per_s_ratio": {
            "gps_vs_no_gps": published_rate("gps") / published_rate("no_gps"),
            "gps_vs_unchecked": published_rate("gps") / published_rate("unchecked"),
        },
        **{
            form: {
                "lines_per_s": round(rate(form), 1),
                "publish_seconds_after_posting": round(publishing[form], 3),
                "accepted_and_published_lines_per_s": round(published_rate(form), 1),
                "events_accepted": sum(r.accepted_events for r in reports[form]),
                "rounds": [describe(r) for r in reports[form]],
            }
            for form in FORMS
        },
    }
    return [
        Result(
            "7 location",
            "order lines/s accepted, orders with GPS (verdict + LocationChecked)",
            rate("gps"),
            "lines/s",
            "the same orders without GPS (verdict no_gps + LocationChecked)",
            rate("no_gps"),
            None,
            details,
        ),
        Result(
            "7 location",
            "order lines/s accepted, orders with GPS, location verification on",
            rate("gps"),
            "lines/s",
            "the same orders, order-capture without the location check (no LocationChecked)",
            rate("unchecked"),
            None,
            {"see": "the other 7 location figure's details"},
        ),
    ]
