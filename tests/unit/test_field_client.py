"""The field client's own rules, without a server: the queue keeps content frozen and survives reopening, batches
stay inside the server's limits, and retries wait as long as Retry-After asks. Status codes a real order-capture
cannot be made to answer on demand (429, 503, 413 at a chosen size) come from a scripted httpx transport; the real
service is exercised in tests/e2e/test_field_client.py."""

import json
import math
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sellthrough_field.backoff import Backoff, Retryable, parse_retry_after
from sellthrough_field.ids import new_event_id
from sellthrough_field.queue import Counts, EventIdReused, EventQueue, Queued
from sellthrough_field.reference import Outlet
from sellthrough_field.simulate import moved, route_for
from sellthrough_field.sync import Limits, Syncer, SyncError, batches

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def an_order(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "event_type": "OrderCaptured",
        "occurred_at": NOW.isoformat(),
        "source": "phone",
        "actor": "REP-1",
        "payload": {"order_id": f"ORD-{n}", "lines": [{"sku_id": "S1", "quantity": n}]},
        **extra,
    }


def test_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(200)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)


def test_enqueue_assigns_an_id_and_repeating_the_same_event_is_a_no_op(tmp_path: Path) -> None:
    with EventQueue(tmp_path / "q.sqlite") as queue:
        event_id = queue.enqueue(an_order())
        assert uuid.UUID(event_id).version == 7
        assert queue.enqueue({**an_order(), "event_id": event_id}) == event_id
        assert queue.counts().pending == 1


def test_an_id_never_takes_other_content(tmp_path: Path) -> None:
    with EventQueue(tmp_path / "q.sqlite") as queue:
        event_id = queue.enqueue(an_order(1))
        with pytest.raises(EventIdReused):
            queue.enqueue({**an_order(2), "event_id": event_id})
        body = queue.body_of(event_id)
    # Not even by writing to the file behind the client's back: the trigger refuses it.
    db = sqlite3.connect(tmp_path / "q.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="frozen"):
        db.execute("UPDATE events SET body = '{}' WHERE event_id = ?", (event_id,))
    db.close()
    with EventQueue(tmp_path / "q.sqlite") as queue:
        assert queue.body_of(event_id) == body
        assert json.loads(body or "")["payload"]["order_id"] == "ORD-1"


def test_settled_events_stay_settled_and_survive_reopening(tmp_path: Path) -> None:
    with EventQueue(tmp_path / "q.sqlite") as queue:
        ids = [queue.enqueue(an_order(n)) for n in range(3)]
        queue.mark_sent({ids[0]: "accepted"})
        queue.mark_rejected({ids[1]: ("unknown_outlet", "O9")})
        queue.mark_sent({ids[1]: "accepted"})  # already rejected: ignored
    with EventQueue(tmp_path / "q.sqlite") as queue:
        assert queue.counts() == Counts(pending=1, sent=1, rejected=1)
        assert [r.reason for r in queue.rejected()] == ["unknown_outlet"]
        assert [row.event_id for row in queue.pending(10)] == [ids[2]]


def test_batches_respect_event_count_and_bytes() -> None:
    rows = [Queued(i, str(i), "x" * 100, 0) for i in range(10)]
    assert [len(b) for b in batches(rows, Limits(max_events=4))] == [4, 4, 2]
    # The body around the events ({"events":[...],"device_time":"..."}) counts too: 62 bytes at most.
    sized = batches(rows, Limits(max_events=100, max_bytes=400))
    assert [len(b) for b in sized] == [3, 3, 3, 1]
    assert all(62 + sum(len(r.body) + 1 for r in b) <= 400 for b in sized)


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=30), usegmt=True), now=NOW) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_honours_retry_after_and_jitters_otherwise() -> None:
    slept: list[float] = []
    failures = [Retryable("429", retry_after=12.0), Retryable("network"), Retryable("network"), Retryable("network")]

    def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    backoff = Backoff(base_seconds=1.0, max_seconds=60.0, max_attempts=10)
    assert backoff.run(attempt, sleep=slept.append) == "ok"
    assert slept[0] == 12.0
    # Full jitter: each wait is within [0, base * 2^n]; the bound doubles per attempt.
    assert all(0 <= wait <= 2 ** (n + 1) for n, wait in enumerate(slept[1:], start=1))


def test_backoff_gives_up_after_its_attempts() -> None:
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise Retryable("network")

    with pytest.raises(Retryable):
        Backoff(max_attempts=3).run(attempt, sleep=lambda _: None)
    assert calls == 3


def scripted(
    answers: list[Callable[[list[dict[str, Any]]], httpx.Response]], seen: list[list[dict[str, Any]]]
) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content)["events"]
        seen.append(events)
        return answers.pop(0)(events) if answers else ok(events)

    return httpx.Client(base_url="http://capture", transport=httpx.MockTransport(handle))


def ok(events: list[dict[str, Any]], status: str = "accepted") -> httpx.Response:
    results = [{"index": i, "event_id": e["event_id"], "status": status} for i, e in enumerate(events)]
    return httpx.Response(200, json={"accepted": len(events), "duplicate": 0, "rejected": 0, "results": results})


def test_sync_waits_out_429_and_503_then_settles_every_event(tmp_path: Path) -> None:
    seen: list[list[dict[str, Any]]] = []
    slept: list[float] = []
    answers = [
        lambda _: httpx.Response(429, headers={"Retry-After": "3"}),
        lambda _: httpx.Response(503, headers={"Retry-After": "1"}),
    ]
    with EventQueue(tmp_path / "q.sqlite") as queue:
        ids = [queue.enqueue(an_order(n)) for n in range(5)]
        report = Syncer(queue, scripted(answers, seen), sleep=slept.append).sync()
        assert slept == [3.0, 1.0]
        assert (report.accepted, report.retries, report.remaining) == (5, 2, 0)
        # Every try sent the very same bytes for the same ids.
        assert seen[0] == seen[1] == seen[2]
        assert [e["event_id"] for e in seen[2]] == ids


def test_a_413_splits_the_batch_and_a_lost_answer_is_settled_by_the_duplicate(tmp_path: Path) -> None:
    seen: list[list[dict[str, Any]]] = []
    answers = [lambda _: httpx.Response(413), lambda e: ok(e, "duplicate")]
    with EventQueue(tmp_path / "q.sqlite") as queue:
        for n in range(4):
            queue.enqueue(an_order(n))
        report = Syncer(queue, scripted(answers, seen), sleep=lambda _: None).sync()
        assert [len(batch) for batch in seen] == [4, 2, 2]
        assert (report.duplicate, report.accepted) == (2, 2)
        assert queue.counts().sent == 4


def test_rejections_are_kept_with_their_reason_and_never_sent_again(tmp_path: Path) -> None:
    seen: list[list[dict[str, Any]]] = []

    def one_rejected(events: list[dict[str, Any]]) -> httpx.Response:
        results = [
            {
                "index": 0,
                "event_id": events[0]["event_id"],
                "status": "rejected",
                "reason": "outside_territory",
                "detail": "outlet O4",
            },
            {"index": 1, "event_id": events[1]["event_id"], "status": "accepted"},
        ]
        return httpx.Response(200, json={"accepted": 1, "duplicate": 0, "rejected": 1, "results": results})

    def forbidden(events: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(
            403,
            json={"violations": [{"index": 0, "reason": "source is not the token's device"}]},
            headers={"content-type": "application/problem+json"},
        )

    with EventQueue(tmp_path / "q.sqlite") as queue:
        queue.enqueue(an_order(1))
        queue.enqueue(an_order(2))
        Syncer(queue, scripted([one_rejected], seen)).sync()
        queue.enqueue(an_order(3))
        queue.enqueue(an_order(4))
        Syncer(queue, scripted([forbidden], seen)).sync()
        assert [len(batch) for batch in seen] == [2, 2, 1]
        assert [(r.reason, r.detail) for r in queue.rejected()] == [
            ("outside_territory", "outlet O4"),
            ("forbidden", "source is not the token's device"),
        ]
        assert queue.counts() == Counts(pending=0, sent=2, rejected=2)


def test_off_site_points_are_as_far_as_asked() -> None:
    lat, lon = moved(28.6, 77.2, 5000, 1.0)
    # Haversine back: the simulator's off-site captures are really that far from the outlet.
    p1, p2, dl = math.radians(28.6), math.radians(lat), math.radians(lon - 77.2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    assert abs(2 * 6_371_000 * math.asin(math.sqrt(a)) - 5000) < 1


def test_weekday_beats_are_walked_on_their_day_and_others_rotate() -> None:
    def at(outlet_id: str) -> list[Outlet]:
        return [Outlet(outlet_id, "D1", None, 0.0, 0.0)]

    weekly = [("BEAT-1-MON", at("O1")), ("BEAT-1-TUE", at("O2"))]
    monday, tuesday, sunday = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 8)
    assert route_for(weekly, monday, 5) == at("O1")
    assert route_for(weekly, tuesday, 0) == at("O2")
    assert route_for(weekly, sunday, 1) == []
    rotating = [("B-7", at("O8")), ("B-8", at("O10"))]
    assert [route_for(rotating, monday, i) for i in range(3)] == [at("O8"), at("O10"), at("O8")]


def test_an_answer_without_results_stops_the_sync_and_keeps_the_events(tmp_path: Path) -> None:
    def no_results(events: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(200, json={"accepted": 0, "duplicate": 0, "rejected": 0, "results": []})

    with EventQueue(tmp_path / "q.sqlite") as queue:
        queue.enqueue(an_order(1))
        with pytest.raises(SyncError):
            Syncer(queue, scripted([no_results], [])).sync()
        assert queue.counts() == Counts(pending=1, sent=0, rejected=0)
