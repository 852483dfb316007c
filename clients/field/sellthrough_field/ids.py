"""Event ids made on the device: UUIDv7 (RFC 9562), time-ordered so the server's indexes stay append-mostly and
the queue's order matches capture order. Python 3.11 has no uuid7 in the standard library; `uuid6` provides it."""

import uuid

import uuid6


def new_event_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid6.uuid7().bytes)
