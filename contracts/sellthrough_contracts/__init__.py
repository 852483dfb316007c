"""Sellthrough event contracts: the only code every service shares about the data on the wire."""

from sellthrough_contracts.envelope import Envelope, type_names
from sellthrough_contracts.registry import (
    EVENT_TYPES,
    AnyEvent,
    decode_event,
    encode_event,
    event_type_names,
    parse_event,
    upcast_document,
)
from sellthrough_contracts.topics import TOPICS, Topic, topic_for

__all__ = [
    "EVENT_TYPES",
    "TOPICS",
    "AnyEvent",
    "Envelope",
    "Topic",
    "decode_event",
    "encode_event",
    "event_type_names",
    "parse_event",
    "topic_for",
    "type_names",
    "upcast_document",
]
