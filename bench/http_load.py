"""HTTP load: closed-loop concurrent posting (throughput) and open-loop paced posting (freshness)."""

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Body:
    content: bytes
    events: int
    lines: int


@dataclass
class Posted:
    """One request: when it was sent and answered (monotonic seconds), and what it carried."""

    sent: float
    answered: float
    events: int
    lines: int
    accepted_events: int
    index: int = -1
    """The body's position in the paced schedule (-1 for closed-loop posts)."""


@dataclass
class LoadReport:
    started: float
    finished: float
    posted: list[Posted] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def accepted_lines(self) -> int:
        return sum(p.lines for p in self.posted if p.accepted_events == p.events)

    @property
    def accepted_events(self) -> int:
        return sum(p.accepted_events for p in self.posted)


def _client(base_url: str, headers: dict[str, str], connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={**headers, "Content-Type": "application/json"},
        timeout=60,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def _post(client: httpx.AsyncClient, body: Body, report: LoadReport, index: int = -1) -> Posted | None:
    sent = time.monotonic()
    try:
        response = await client.post("/v1/events", content=body.content)
    except httpx.HTTPError as error:
        report.failures.append(repr(error))
        return None
    answered = time.monotonic()
    if response.status_code != 200:
        report.failures.append(f"HTTP {response.status_code}: {response.text[:300]}")
        return None
    posted = Posted(sent, answered, body.events, body.lines, int(response.json()["accepted"]), index)
    if posted.accepted_events != body.events:
        report.failures.append(f"only {posted.accepted_events} of {body.events} accepted: {response.text[:300]}")
    report.posted.append(posted)
    return posted


async def closed_loop(
    base_url: str,
    headers: dict[str, str],
    bodies: Sequence[Body],
    *,
    clients: int,
    seconds: float,
    cycle: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """`clients` workers post back to back until the bodies run out (or, with `cycle`, for `seconds`)."""
    report = LoadReport(time.monotonic(), 0.0)
    deadline = report.started + seconds
    next_index = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while time.monotonic() < deadline and (cycle or next_index < len(bodies)):
            body = bodies[next_index % len(bodies)]
            next_index += 1
            if await _post(client, body, report) is not None and progress:
                progress(body.lines)

    async with _client(base_url, headers, clients) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    report.finished = time.monotonic()
    return report


async def paced(
    base_url: str,
    headers: dict[str, str],
    bodies: Sequence[Body],
    *,
    per_second: float,
    max_in_flight: int,
) -> LoadReport:
    """Open loop: body i is sent at start + i / per_second, whatever the previous answers (up to
    `max_in_flight` requests outstanding; beyond that the schedule slips, and the achieved rate shows it)."""
    report = LoadReport(time.monotonic(), 0.0)
    slots = asyncio.Semaphore(max_in_flight)
    tasks = []

    async def send(client: httpx.AsyncClient, body: Body, index: int) -> None:
        try:
            await _post(client, body, report, index)
        finally:
            slots.release()

    async with _client(base_url, headers, max_in_flight) as client:
        for i, body in enumerate(bodies):
            delay = report.started + i / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tasks.append(asyncio.create_task(send(client, body, i)))
        await asyncio.gather(*tasks)
    report.finished = time.monotonic()
    return report
