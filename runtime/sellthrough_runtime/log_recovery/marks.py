"""What a record carries for recovery: its content digest (stored with a consumer's offsets) and its outbox's
generation (a header the relay sets, raised by each republish)."""

import hashlib

from aiokafka import ConsumerRecord

GENERATION_HEADER = "outbox_generation"
"""Header of every relayed record: "<service>:<n>", n raised by each republish of that service's outbox."""


def generation_mark(service: str, generation: int) -> bytes:
    return f"{service}:{generation}".encode()


def read_generation_mark(value: bytes) -> tuple[str, int]:
    """The publishing service and generation of a header value (generation 0 if unreadable)."""
    service, _, number = value.decode(errors="replace").rpartition(":")
    return service, int(number) if number.isdigit() else 0


def record_digest(record: ConsumerRecord[bytes, bytes]) -> bytes:
    """Identifies a record's content, to tell whether an offset still holds the record once applied there."""
    return hashlib.sha256((record.key or b"") + b"\0" + (record.value or b"")).digest()
