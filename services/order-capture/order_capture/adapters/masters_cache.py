"""This worker's copy of the masters its batches named, so that a batch of known outlets, SKUs, reps and
distributors reads none of them from PostgreSQL (it was one round trip and ~7% of a batch's handler time), nor
its posting rep's territory (another round trip per rep's batch).

Invalidation: every change to the master tables notifies channel `CHANNEL` when its transaction commits
(migration 0009's statement triggers, whoever the writer is); `listen` holds a connection of its own LISTENing
and empties the copy on each notification. Staleness bound: a batch may judge against a master as it was until
this worker's event loop has handled the notification, i.e. milliseconds after the change committed (one turn of
a busy loop), which a batch that read PostgreSQL before the commit had anyway. Without a listening connection
(not yet connected, or lost: notifications could be missed) the copy is not used at all and every batch reads
PostgreSQL as before; it is emptied again once listening resumes.

The copy is whole (every master, read in one statement) while the masters number at most `whole_copy_max_rows`:
then a master it lacks is unknown, with the same staleness bound (its registration empties the copy). Beyond
that only masters found are kept, read by id as batches name them: a batch naming an unknown one reads
PostgreSQL for it each time. A read that raced a notification is not kept (`_generation`).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from order_capture.adapters.store import load_all_masters, load_masters_and_places, load_rep_territory
from order_capture.domain.territory import RepTerritory
from order_capture.domain.validation import KnownMasters, References
from order_capture.domain.verification import OutletPlace
from sellthrough_runtime.app import ServiceContext

log = logging.getLogger(__name__)

CHANNEL = "order_capture_masters"
"""Notified with the schema's name by migration 0009's triggers."""
LISTENER_NAME = "sellthrough-order-capture-masters"
"""The listening connection's application_name (pg_stat_activity)."""
EXTENSION = "masters"
"""The key of a worker's MastersCache in ServiceContext.extensions (main.py sets it, api/events.py reads it)."""
WHOLE_COPY_MAX_ROWS = 100_000
"""Most masters a worker copies whole (~300 bytes each; reading them costs ~1 us a row in asyncpg, after every
change): a brand with more is read by id."""
_CHECK_SECONDS = 5.0
"""How often the listening connection is checked: a connection dead without a word (no FIN) is found this late."""


@dataclass(frozen=True)
class _Outlet:
    distributor_id: str
    beat_id: str | None
    place: OutletPlace


@dataclass
class _Masters:
    outlets: dict[str, _Outlet] = field(default_factory=dict)
    skus: dict[str, Decimal | None] = field(default_factory=dict)
    """Each SKU known, with its GST rate (None: it has none)."""
    reps: set[str] = field(default_factory=set)
    distributors: set[str] = field(default_factory=set)
    territories: dict[str, RepTerritory] = field(default_factory=dict)
    """The territory of each posting rep known (store.load_territories)."""
    whole: bool = False
    """Every master is here: one not found is unknown."""


class MastersCache:
    """The masters this worker's batches named (module docstring); one per process, shared by its requests."""

    def __init__(self, schema: str, whole_copy_max_rows: int = WHOLE_COPY_MAX_ROWS) -> None:
        self._schema = schema
        self._whole_copy_max_rows = whole_copy_max_rows
        self._too_many = False
        """The masters outnumbered `whole_copy_max_rows` once: read by id from then on."""
        self._filling = asyncio.Lock()
        self._masters = _Masters()
        self._generation = 0
        """Bumped by each invalidation: a read begun under another generation may predate the change."""
        self._live = False
        """Listening: only then is a notification of every change sure to arrive."""
        self._listening = asyncio.Event()
        self.reads = 0
        """Round trips made for masters (tests, and the bench's count of work per batch)."""

    @property
    def live(self) -> bool:
        return self._live

    async def listening(self) -> None:
        """Until the copy is in use (`listen` has its connection)."""
        await self._listening.wait()

    def invalidate(self) -> None:
        self._generation += 1
        self._masters = _Masters()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == self._schema:
            self.invalidate()

    async def masters_and_places(
        self, connection: Callable[[], Awaitable[asyncpg.Connection]], refs: References
    ) -> tuple[KnownMasters, dict[str, OutletPlace]]:
        """store.load_masters_and_places of `refs`, from this copy for what it holds; `connection` is called only
        for what it does not hold."""
        if not self._live:
            self.reads += 1
            return await load_masters_and_places(await connection(), refs)
        held = self._masters  # a notification during the read below replaces it: these are as of now
        if not held.whole and not self._too_many:
            held = await self._fill(connection)
        outlets = {o: held.outlets[o] for o in refs.outlets if o in held.outlets}
        skus = {s: held.skus[s] for s in refs.skus if s in held.skus}
        reps = refs.reps & held.reps
        distributors = refs.distributors & held.distributors
        if held.whole:
            return _answer(outlets, skus, reps, distributors)
        missing = References(
            outlets=refs.outlets - outlets.keys(),
            skus=refs.skus - skus.keys(),
            reps=refs.reps - reps,
            distributors=refs.distributors - distributors,
        )
        if missing.outlets or missing.skus or missing.reps or missing.distributors:
            generation = self._generation
            self.reads += 1
            known, places = await load_masters_and_places(await connection(), missing)
            read = _of_known(known, places)
            outlets |= read.outlets
            skus |= read.skus
            reps |= read.reps
            distributors |= read.distributors
            if self._live and generation == self._generation:
                current = self._masters
                current.outlets |= read.outlets
                current.skus |= read.skus
                current.reps |= read.reps
                current.distributors |= read.distributors
        return _answer(outlets, skus, reps, distributors)

    async def _fill(self, connection: Callable[[], Awaitable[asyncpg.Connection]]) -> _Masters:
        """The copy made whole, if the masters are few enough (one batch at a time reads them; the others wait
        and use its copy)."""
        async with self._filling:
            held = self._masters
            if held.whole or self._too_many:
                return held
            generation = self._generation
            self.reads += 1
            loaded = await load_all_masters(await connection(), self._whole_copy_max_rows)
            if loaded is None:
                self._too_many = True
                return held
            whole = _of_known(*loaded)
            whole.whole = True
            if self._live and generation == self._generation:
                whole.territories = self._masters.territories
                self._masters = whole
            return whole

    async def rep_territory(
        self, connection: Callable[[], Awaitable[asyncpg.Connection]], rep_id: str
    ) -> RepTerritory | None:
        """store.load_rep_territory, from this copy if it holds the rep."""
        held = self._masters
        if self._live and (territory := held.territories.get(rep_id)) is not None:
            return territory
        generation = self._generation
        self.reads += 1
        territory = await load_rep_territory(await connection(), rep_id)
        if territory is not None and self._live and generation == self._generation:
            self._masters.territories[rep_id] = territory
        return territory

    async def listen(self, database_url: str) -> None:
        """Keep the copy usable while a connection LISTENs on `CHANNEL` (a background job: returns or raises when
        the connection is lost, and the copy is out of use until it is called again)."""
        conn = await asyncpg.connect(database_url, server_settings={"application_name": LISTENER_NAME})
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def terminated(_conn: object) -> None:
            if not lost.done():
                lost.set_result(None)

        conn.add_termination_listener(terminated)
        try:
            await conn.add_listener(CHANNEL, self._notified)
            # Changes committed before LISTEN took effect sent nothing here: start from an empty copy.
            self.invalidate()
            self._live = True
            self._listening.set()
            log.info("masters cache listening", extra={"schema": self._schema})
            while not lost.done():
                await asyncio.wait([lost], timeout=_CHECK_SECONDS)
                if not lost.done():
                    await conn.fetchval("SELECT 1", timeout=_CHECK_SECONDS)
        finally:
            self._live = False
            self._listening.clear()
            self.invalidate()
            await conn.close(timeout=1)


def _of_known(known: KnownMasters, places: dict[str, OutletPlace]) -> _Masters:
    return _Masters(
        outlets={o: _Outlet(d, known.outlet_beat.get(o), places[o]) for o, d in known.outlet_distributor.items()},
        skus={s: known.sku_gst_rates.get(s) for s in known.skus},
        reps=set(known.reps),
        distributors=set(known.distributors),
    )


def _answer(
    outlets: dict[str, _Outlet], skus: dict[str, Decimal | None], reps: set[str], distributors: set[str]
) -> tuple[KnownMasters, dict[str, OutletPlace]]:
    return (
        KnownMasters(
            outlet_distributor={o: m.distributor_id for o, m in outlets.items()},
            skus=frozenset(skus),
            reps=frozenset(reps),
            distributors=frozenset(distributors),
            outlet_beat={o: m.beat_id for o, m in outlets.items()},
            sku_gst_rates={s: rate for s, rate in skus.items() if rate is not None},
        ),
        {o: m.place for o, m in outlets.items()},
    )


def masters_of(context: ServiceContext) -> MastersCache | None:
    """The worker's copy of the masters, if it keeps one (settings.masters_cache)."""
    masters = context.extensions.get(EXTENSION)
    return masters if isinstance(masters, MastersCache) else None
