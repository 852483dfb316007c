"""Surviving a broker that loses or rebuilds its log, behind one interface: `ConsumerRecovery` for the
exactly-once consumer, `RelayRecovery` for the outbox relay, and the marks records carry for them (digest,
outbox generation). The rules, and the broker behaviour (Tansu, Kafka) behind each: docs/broker-behaviour.md."""

from sellthrough_runtime.log_recovery.consumer_side import (
    STARVED_SECONDS,
    Batches,
    ConsumerRecovery,
    StoredOffsets,
    StoredPosition,
)
from sellthrough_runtime.log_recovery.marks import GENERATION_HEADER, record_digest
from sellthrough_runtime.log_recovery.relay_side import PartitionRanges, RelayRecovery

__all__ = [
    "GENERATION_HEADER",
    "STARVED_SECONDS",
    "Batches",
    "ConsumerRecovery",
    "PartitionRanges",
    "RelayRecovery",
    "StoredOffsets",
    "StoredPosition",
    "record_digest",
]
