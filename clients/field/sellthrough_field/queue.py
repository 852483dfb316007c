"""The device's durable outbox: one SQLite row per event, its content frozen at enqueue.

Why SQLite in WAL mode with synchronous=FULL: a phone is killed, rebooted or runs flat at any moment; a committed
row survives that, and a sync marks rows settled only after the server has answered for them, so a kill mid-sync
leaves them pending and the next sync sends them again (the server then answers `duplicate`, which counts as sent).
A trigger refuses any change to an event's body: editing an order is a new event with a new id, never a re-send of
an old id with other content (the server would reject that as `event_id_reused`)."""

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sellthrough_field.ids import new_event_id

State = Literal["pending", "sent", "rejected"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    body         TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'rejected')),
    outcome      TEXT,
    reason       TEXT,
    detail       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    enqueued_at  TEXT NOT NULL,
    settled_at   TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE state = 'pending';
CREATE TRIGGER IF NOT EXISTS events_frozen BEFORE UPDATE OF event_id, event_type, body, content_hash ON events
BEGIN
    SELECT RAISE(ABORT, 'an enqueued event is frozen: record a new event instead');
END;
CREATE TRIGGER IF NOT EXISTS events_settled_once BEFORE UPDATE OF state ON events
WHEN OLD.state <> 'pending'
BEGIN
    SELECT RAISE(ABORT, 'a settled event stays settled');
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class EventIdReused(ValueError):
    """The id is already queued with other content."""


@dataclass(frozen=True)
class Queued:
    seq: int
    event_id: str
    body: str
    """Canonical JSON, exactly what is sent."""
    attempts: int


@dataclass(frozen=True)
class Counts:
    pending: int
    sent: int
    rejected: int


@dataclass(frozen=True)
class Rejected:
    event_id: str
    event_type: str
    reason: str
    detail: str | None


def canonical(event: Mapping[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class EventQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below opens its own explicit transaction.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "EventQueue":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # Device identity: which device and actor this queue speaks for (the token must match them).
    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def enqueue(self, event: Mapping[str, Any]) -> str:
        """Store an event for sending and return its id (a new UUIDv7 when it has none). Enqueueing the same
        event again is a no-op; the same id with other content raises EventIdReused."""
        frozen = dict(event)
        frozen.setdefault("event_id", str(new_event_id()))
        event_type = frozen.get("event_type")
        if not isinstance(event_type, str):
            raise ValueError("an event needs an event_type")
        body = canonical(frozen)
        digest = content_hash(body)
        event_id = str(frozen["event_id"])
        with self._transaction() as db:
            row = db.execute("SELECT content_hash FROM events WHERE event_id = ?", (event_id,)).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise EventIdReused(f"event {event_id} is already queued with other content")
                return event_id
            db.execute(
                "INSERT INTO events (event_id, event_type, body, content_hash, enqueued_at) VALUES (?, ?, ?, ?, ?)",
                (event_id, event_type, body, digest, _now()),
            )
        return event_id

    def pending(self, limit: int) -> list[Queued]:
        rows = self._db.execute(
            "SELECT seq, event_id, body, attempts FROM events WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [Queued(*row) for row in rows]

    def count_attempt(self, event_ids: list[str]) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE events SET attempts = attempts + 1 WHERE event_id = ?", [(e,) for e in event_ids])

    def mark_sent(self, outcomes: Mapping[str, str]) -> None:
        """`outcomes`: event_id -> the server's status, accepted or duplicate (both mean the server holds it)."""
        now = _now()
        with self._transaction() as db:
            db.executemany(
                "UPDATE events SET state = 'sent', outcome = ?, settled_at = ? "
                "WHERE event_id = ? AND state = 'pending'",
                [(status, now, event_id) for event_id, status in outcomes.items()],
            )

    def mark_rejected(self, rejections: Mapping[str, tuple[str, str | None]]) -> None:
        """`rejections`: event_id -> (reason, detail). Kept for the user to see; never sent again."""
        now = _now()
        with self._transaction() as db:
            db.executemany(
                "UPDATE events SET state = 'rejected', outcome = 'rejected', reason = ?, detail = ?, settled_at = ? "
                "WHERE event_id = ? AND state = 'pending'",
                [(reason, detail, now, event_id) for event_id, (reason, detail) in rejections.items()],
            )

    def counts(self) -> Counts:
        rows = dict(self._db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())
        return Counts(rows.get("pending", 0), rows.get("sent", 0), rows.get("rejected", 0))

    def rejected(self) -> list[Rejected]:
        rows = self._db.execute(
            "SELECT event_id, event_type, reason, detail FROM events WHERE state = 'rejected' ORDER BY seq"
        ).fetchall()
        return [Rejected(*row) for row in rows]

    def body_of(self, event_id: str) -> str | None:
        row = self._db.execute("SELECT body FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else str(row[0])

    def states(self) -> dict[str, tuple[State, str | None]]:
        """event_id -> (state, server outcome): for tests and the simulator's checks."""
        rows = self._db.execute("SELECT event_id, state, outcome FROM events").fetchall()
        return {event_id: (state, outcome) for event_id, state, outcome in rows}
