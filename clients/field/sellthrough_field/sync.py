"""Send a queue's pending events to order-capture in batches and settle each from the server's per-event answer.

A row is settled only from an answer about it: accepted or duplicate -> sent, rejected -> rejected (kept with
its reason, never retried). Anything else (no answer, a 429/503/5xx, a kill -9 of this process) leaves it pending
for the next attempt, and re-sending is safe because the server recognises a repeated id with the same content."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sellthrough_field.backoff import Backoff, Retryable, parse_retry_after
from sellthrough_field.queue import EventQueue, Queued

_ENVELOPE_BYTES = len('{"events":[],"device_time":"2026-01-01T00:00:00.000000+00:00"}')
"""The body around the events: an upper bound, so a batch sized to max_bytes still fits with its device_time."""


class SyncError(Exception):
    """The server refused in a way a retry cannot fix (bad token, a client bug): the queue is left as it is."""


@dataclass(frozen=True)
class Limits:
    """order-capture's limits (its settings max_batch_events and max_body_bytes); a 413 halves the batch anyway."""

    max_events: int = 1000
    max_bytes: int = 8 * 1024 * 1024


@dataclass
class SyncReport:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    remaining: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def batches(rows: list[Queued], limits: Limits) -> list[list[Queued]]:
    """Consecutive rows, each batch within the event count and body size (bodies joined by commas)."""
    out: list[list[Queued]] = []
    current: list[Queued] = []
    size = _ENVELOPE_BYTES
    for row in rows:
        row_bytes = len(row.body.encode()) + 1
        if current and (len(current) >= limits.max_events or size + row_bytes > limits.max_bytes):
            out.append(current)
            current, size = [], _ENVELOPE_BYTES
        current.append(row)
        size += row_bytes
    if current:
        out.append(current)
    return out


class Syncer:
    def __init__(
        self,
        queue: EventQueue,
        client: httpx.Client,
        *,
        limits: Limits | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        clock_skew: timedelta = timedelta(0),
    ) -> None:
        """`client`: base_url order-capture, Authorization: Bearer <device token>. `clock_skew`: how far this
        device's clock is off (the simulator's devices), applied to the device time sent with each batch."""
        self.queue = queue
        self.client = client
        self.limits = limits or Limits()
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.clock_skew = clock_skew

    def sync(self) -> SyncReport:
        """Send everything pending, oldest first. Raises Retryable when the server stays unreachable after the
        backoff's attempts, SyncError when it refuses the token or the request; what was settled stays settled."""
        report = SyncReport()
        while rows := self.queue.pending(self.limits.max_events * 4):
            for batch in batches(rows, self.limits):
                self._send(batch, report)
            # Every answered batch settles each of its rows; a server answering for fewer would loop forever.
            if {row.event_id for row in self.queue.pending(len(rows))} >= {row.event_id for row in rows}:
                raise SyncError("order-capture answered without a result for every event; they stay queued")
        report.remaining = self.queue.counts().pending
        return report

    def _send(self, batch: list[Queued], report: SyncReport) -> None:
        attempts = 0

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            report.requests += 1
            self.queue.count_attempt([row.event_id for row in batch])
            return self._post(batch)

        kwargs: dict[str, Any] = {} if self.sleep is None else {"sleep": self.sleep}
        response = self.backoff.run(attempt, **kwargs)
        report.retries += attempts - 1
        if response.status_code == 413:
            if len(batch) == 1:
                self._reject({batch[0].event_id: response.text[:500]}, "payload_too_large", report)
                return
            # Smaller batches from now on: the server's limit is lower than this client assumed.
            half = len(batch) // 2
            self.limits = Limits(max_events=max(1, half), max_bytes=self.limits.max_bytes)
            self._send(batch[:half], report)
            self._send(batch[half:], report)
            return
        if response.status_code == 403:
            self._forbidden(batch, response, report)
            return
        if response.status_code != 200:
            raise SyncError(f"order-capture answered {response.status_code}: {response.text[:500]}")
        self._settle(batch, response.json(), report)

    def _post(self, batch: list[Queued]) -> httpx.Response:
        # The stored canonical JSON goes out byte for byte: nothing is re-serialised between enqueue and send.
        # device_time is the device clock at sending, beside the events: order-capture keeps device minus server
        # time as the batch's clock skew (README, "Field verification").
        device_time = json.dumps((datetime.now(UTC) + self.clock_skew).isoformat()).encode()
        body = b'{"events":[' + b",".join(row.body.encode() for row in batch) + b'],"device_time":' + device_time + b"}"
        try:
            response = self.client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
        except httpx.TransportError as error:
            raise Retryable(f"network: {error!r}") from error
        if response.status_code in (429, 503):
            raise Retryable(
                f"order-capture answered {response.status_code}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 500:
            raise Retryable(f"order-capture answered {response.status_code}")
        return response

    def _settle(self, batch: list[Queued], document: dict[str, Any], report: SyncReport) -> None:
        sent: dict[str, str] = {}
        rejected: dict[str, tuple[str, str | None]] = {}
        for result in document["results"]:
            row = batch[int(result["index"])]
            status = result["status"]
            if status in ("accepted", "duplicate"):
                sent[row.event_id] = status
            else:
                rejected[row.event_id] = (str(result.get("reason") or "rejected"), result.get("detail"))
        self.queue.mark_sent(sent)
        self.queue.mark_rejected(rejected)
        report.accepted += sum(1 for s in sent.values() if s == "accepted")
        report.duplicate += sum(1 for s in sent.values() if s == "duplicate")
        report.rejected += len(rejected)
        for reason, _ in rejected.values():
            report.reasons[reason] = report.reasons.get(reason, 0) + 1

    def _forbidden(self, batch: list[Queued], response: httpx.Response, report: SyncReport) -> None:
        """A 403 names the events this token may not post and accepts nothing: those are rejected for good, the
        rest go again without them. A 403 naming no event (a token without rights at all) stops the sync."""
        problem = response.json() if response.headers.get("content-type", "").endswith("json") else {}
        violations = problem.get("violations") or []
        named = {int(v["index"]): str(v["reason"]) for v in violations if "index" in v}
        if not named:
            raise SyncError(f"order-capture refused the token: {response.text[:500]}")
        self._reject({batch[i].event_id: text for i, text in named.items()}, "forbidden", report)
        rest = [row for i, row in enumerate(batch) if i not in named]
        if rest:
            self._send(rest, report)

    def _reject(self, details: dict[str, str | None], reason: str, report: SyncReport) -> None:
        """`details`: event_id -> detail; all rejected by this client for `reason`."""
        self.queue.mark_rejected({event_id: (reason, detail) for event_id, detail in details.items()})
        report.rejected += len(details)
        report.reasons[reason] = report.reasons.get(reason, 0) + len(details)


def client_for(url: str, token: str, transport: httpx.BaseTransport | None = None, timeout: float = 30) -> httpx.Client:
    return httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, transport=transport
    )
