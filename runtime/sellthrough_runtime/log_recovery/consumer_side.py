"""The consumer's side: positioning assigned partitions from the stored offsets (verifying the last applied
record), screening each fetched batch, reading quiet partitions again. No database access: the consumer hands
it a reader of the stored offsets that waits out outages."""

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from sellthrough_runtime.log_recovery.marks import GENERATION_HEADER, read_generation_mark, record_digest
from sellthrough_runtime.metrics import CONSUMER_REREADS

log = logging.getLogger(__name__)

STARVED_SECONDS = 15.0
_STARVED_FETCHES = 10
"""How long (and over how many fetches) a partition may deliver nothing while its end lies beyond the stored
offset, before it is read again."""

_MISSING_RECORD_WAIT_SECONDS = 5.0
_MISSING_RECORD_WAIT_FETCHES = 5
"""How long (and over how many fetches) the last applied record may fail to arrive from a partition that seems
to end before it, before the partition is taken to have lost it."""

Records = list[ConsumerRecord[bytes, bytes]]
Batches = dict[TopicPartition, Records]
PartitionKey = tuple[str, int]
Generations = dict[PartitionKey, dict[str, int]]


class StoredPosition(NamedTuple):
    """What the last applied batch stored for a partition (consumer_offsets)."""

    next_offset: int
    digest: bytes | None
    generations: Mapping[str, int]


StoredOffsets = Mapping[PartitionKey, StoredPosition]
StoredOffsetsReader = Callable[[], Awaitable[StoredOffsets]]
"""Reads the group's stored positions; the caller's reader retries database outages, never raises them."""


class ConsumerRecovery:
    """Called by the consumer, under its batch lock: `position` on assignment (and for a stale batch's
    partitions), `screen` on every fetched batch, `applied` after a batch commits; `generations` is stored with
    the offsets."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        read_stored: StoredOffsetsReader,
        *,
        group_id: str,
        member: str,
        starved_after_seconds: float = STARVED_SECONDS,
    ) -> None:
        self._consumer = consumer
        self._read_stored = read_stored
        self._group_id = group_id
        self._member = member
        self._starved_after_seconds = starved_after_seconds
        self._to_verify: dict[TopicPartition, tuple[int, bytes]] = {}
        """Partitions just positioned: the offset and digest of the last record applied there."""
        self._seemingly_short: dict[TopicPartition, tuple[float, int]] = {}
        """Partitions whose reported end is below the stored offset: deadline and fetches left for the record."""
        self._generations: Generations = {}
        """Per assigned partition, the highest outbox generation seen there from each publishing service."""
        self._fetches = 0
        self._last_delivery: dict[TopicPartition, tuple[float, int]] = {}
        """Per assigned partition, when (clock, fetch count) it last delivered records or was positioned."""
        self._starved_at: dict[TopicPartition, int] = {}
        """Partitions found starving: the stored offset then, to tell a second starvation without progress."""
        self._rewound: set[TopicPartition] = set()
        """Partitions sent back to their start since records of theirs were last applied: their stored offset
        belongs to the log they were rewound from."""

    @property
    def generations(self) -> Generations:
        return self._generations

    async def position(self, partitions: Sequence[TopicPartition]) -> None:
        """Seek each partition to its stored offset, one record before it if that record is to be verified, or to
        the start if nothing is stored or the partition plainly lost what was applied."""
        if partitions:
            await self._position(partitions, await self._read_stored(), await self._ends(partitions))

    async def screen(self, batches: Batches) -> Batches:
        """The records of a fetched batch to apply. Quiet partitions are read again first; a partition whose
        re-read last record does not match, or whose records show a raised outbox generation, is rewound and its
        records dropped. (A consumer reading a partition from the start may meet a generation change in a log
        that was never rebuilt under it, and so re-read it once more: harmless, and rare.)"""
        await self._revive_quiet(batches)
        if self._seemingly_short:
            await self._rewind_if_last_record_missing(batches)
        kept = {}
        for tp, records in batches.items():
            if records and self._generation_raised(tp, records) and records[0].offset != 0:
                await self._rewind(tp)
                continue
            expected = self._to_verify.pop(tp, None)
            if expected is None or not records:
                kept[tp] = records
                continue
            offset, digest = expected
            first = records[0]
            if first.offset == offset and record_digest(first) == digest:
                kept[tp] = records[1:]
                continue
            self._warn_lost(tp, offset)
            if first.offset == 0:
                kept[tp] = records  # already at the beginning: these are the records to apply
            else:
                await self._rewind(tp)
        return kept

    def applied(self, batches: Batches) -> None:
        """A batch committed: the offsets stored for its partitions belong to the log they are read from now."""
        self._rewound.difference_update(tp for tp, records in batches.items() if records)

    async def _ends(self, partitions: Sequence[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The partitions' reported ends; none if the broker cannot tell now (a partition is then treated as
        possibly short: its last applied record must arrive, see _position)."""
        try:
            ends: Mapping[TopicPartition, int] = await self._consumer.end_offsets(list(partitions))
        except KafkaError as error:
            log.warning("partition ends unknown", extra={"group": self._group_id, "error": repr(error)})
            return {}
        return ends

    async def _position(
        self, partitions: Iterable[TopicPartition], stored: StoredOffsets, ends: Mapping[TopicPartition, int]
    ) -> None:
        # One seek_to_beginning for every partition without a stored offset: each call waits for the fetcher to
        # reset offsets (about one fetch max wait), so a call per partition held a fresh member's first assignment
        # of query-api's 31 partitions for 15-30 s at aiokafka's 500 ms wait (and its shutdown, which waits for it).
        from_the_start: list[TopicPartition] = []
        for tp in partitions:
            self._forget(tp)
            position = stored.get((tp.topic, tp.partition))
            self._generations[(tp.topic, tp.partition)] = dict(position.generations) if position else {}
            end = ends.get(tp)
            if position is None:
                from_the_start.append(tp)
            elif position.digest is not None and position.next_offset > 0:
                self._to_verify[tp] = (position.next_offset - 1, position.digest)
                self._consumer.seek(tp, position.next_offset - 1)
                if end is None or position.next_offset > end:
                    wait = (time.monotonic() + _MISSING_RECORD_WAIT_SECONDS, _MISSING_RECORD_WAIT_FETCHES)
                    self._seemingly_short[tp] = wait
            elif end is not None and position.next_offset > end:
                # Fewer records than were applied, and no digest to check: the broker lost its data.
                log.warning(
                    "stored offset beyond partition end; re-reading from the beginning",
                    extra={**self._where(tp), "stored": position.next_offset, "end": end},
                )
                await self._rewind(tp)
            else:
                self._consumer.seek(tp, position.next_offset)
        if from_the_start:
            await self._consumer.seek_to_beginning(*from_the_start)

    def _forget(self, tp: TopicPartition) -> None:
        self._to_verify.pop(tp, None)
        self._seemingly_short.pop(tp, None)
        self._rewound.discard(tp)
        self._last_delivery[tp] = (time.monotonic(), self._fetches)

    async def _rewind(self, tp: TopicPartition, reason: str = "log_rebuilt") -> None:
        """Read the partition again from its start (processed_events makes the replay harmless)."""
        CONSUMER_REREADS.labels(self._group_id, tp.topic, reason).inc()
        self._forget(tp)
        self._rewound.add(tp)
        await self._consumer.seek_to_beginning(tp)

    async def _rewind_if_last_record_missing(self, batches: Batches) -> None:
        """Partitions that seemed to end before their last applied record: forget those the record came from, and
        rewind those it still has not come from after the wait."""
        now = time.monotonic()
        for tp, (deadline, fetches_left) in list(self._seemingly_short.items()):
            if batches.get(tp):
                del self._seemingly_short[tp]
            elif now < deadline or fetches_left > 1:
                self._seemingly_short[tp] = (deadline, fetches_left - 1)
            else:
                self._warn_lost(tp, self._to_verify.get(tp, (None, None))[0])
                await self._rewind(tp)

    async def _revive_quiet(self, batches: Batches) -> None:
        """Partitions that delivered nothing for a while: those whose end lies beyond the stored offset are read
        again, from the stored offset the first time, from the start if one starves again at the same offset;
        those whose end lies before it are positioned again, so their last applied record is checked."""
        quiet = self._quiet(batches)
        if not quiet:
            return
        ends = await self._ends(quiet)
        if not ends:
            log.info("quiet partitions not checked", extra={"group": self._group_id})
            return
        stored = await self._read_stored()
        for tp in quiet:
            position = stored.get((tp.topic, tp.partition))
            next_offset = position.next_offset if position else 0
            if ends[tp] == next_offset:
                continue  # at the end
            if ends[tp] < next_offset:
                if tp not in self._rewound:
                    # Routine on Tansu, which understates ends (the last applied record is then simply there).
                    log.debug("quiet partition ends before its stored offset; checking its last applied record")
                    await self._position([tp], stored, ends)
                continue
            again = self._starved_at.get(tp) == next_offset
            self._starved_at[tp] = next_offset
            log.warning(
                "partition delivers nothing although records wait; reading it again"
                + (" from the beginning" if again else " from the stored offset"),
                extra={**self._where(tp), "member": self._member, "stored": next_offset, "end": ends[tp]},
            )
            self._consumer.resume(tp)  # never paused here; but a paused partition would starve just so
            if again:
                await self._rewind(tp, "starved_again")
            else:
                CONSUMER_REREADS.labels(self._group_id, tp.topic, "starved").inc()
                await self._position([tp], stored, ends)

    def _quiet(self, batches: Batches) -> list[TopicPartition]:
        """Assigned partitions that delivered nothing for the starvation time and fetches (their clock restarts)."""
        self._fetches += 1
        now = time.monotonic()
        quiet = []
        for tp in self._consumer.assignment():
            if batches.get(tp) or tp in self._seemingly_short:  # the latter has a wait of its own
                self._last_delivery[tp] = (now, self._fetches)
                continue
            since, fetches = self._last_delivery.setdefault(tp, (now, self._fetches))
            if now - since >= self._starved_after_seconds and self._fetches - fetches >= _STARVED_FETCHES:
                quiet.append(tp)
                self._last_delivery[tp] = (now, self._fetches)
        return quiet

    def _generation_raised(self, tp: TopicPartition, records: Records) -> bool:
        """Note the outbox generations in these records; whether one is above what was seen from its service on
        this partition before (so the log was rebuilt under this consumer)."""
        seen = self._generations.setdefault((tp.topic, tp.partition), {})
        raised = False
        for record in records:
            for name, value in record.headers:
                if name != GENERATION_HEADER:
                    continue
                service, generation = read_generation_mark(value)
                known = seen.get(service)
                if known is None or generation > known:
                    seen[service] = generation
                    if known is not None:
                        raised = True
                        log.warning(
                            "partition rebuilt by a republished outbox; re-reading it from the beginning",
                            extra={
                                **self._where(tp),
                                "offset": record.offset,
                                "publisher": service,
                                "generation": generation,
                            },
                        )
                break
        return raised

    def _warn_lost(self, tp: TopicPartition, offset: int | None) -> None:
        log.warning(
            "partition no longer holds the last record applied; re-reading it from the beginning",
            extra={**self._where(tp), "offset": offset},
        )

    def _where(self, tp: TopicPartition) -> dict[str, object]:
        return {"group": self._group_id, "topic": tp.topic, "partition": tp.partition}
