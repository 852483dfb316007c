"""Durable acceptance: idempotency records and outbox rows in one transaction."""

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from order_capture.domain.batch import StoreOutcome
from order_capture.domain.fingerprint import Accepted, accepted_form, earlier_version_hashes, legacy_content_hash
from order_capture.domain.geo import Point
from order_capture.domain.territory import OrderKey, RepTerritory, Territories, orders_acted_on, with_batch_orders
from order_capture.domain.validation import KnownMasters, References
from order_capture.domain.verification import CHECKED_EVENT_TYPES, OutletPlace
from sellthrough_contracts import Envelope
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_runtime.auth import Principal, Role
from sellthrough_runtime.outbox import OutboxRecord, append_records_to_outbox

if TYPE_CHECKING:  # masters_cache reads through this module's load_masters_and_places
    from order_capture.adapters.masters_cache import MastersCache

# The ids go as one JSON document rather than four text[] arguments: asyncpg encodes each element of an array
# argument with several Python-level type checks, a few hundred ids per batch.
# An outlet's row carries its place too (channel, geotag: _OUTLET_PLACES's columns), so that the location checks
# of the same outlets need no second round trip (PgBatchStore.outlet_places).
_KNOWN_MASTERS = """
SELECT 'outlet' AS kind, o.outlet_id AS id, o.distributor_id, o.beat_id, o.channel,
       coalesce(g.lat, o.lat) AS lat, coalesce(g.lon, o.lon) AS lon, NULL::numeric AS gst_rate
FROM known_outlets o LEFT JOIN outlet_geotags g USING (outlet_id)
WHERE o.outlet_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'outlets'))
UNION ALL SELECT 'sku', sku_id, NULL, NULL, NULL, NULL, NULL, gst_rate FROM known_skus
WHERE sku_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'skus'))
UNION ALL SELECT 'rep', rep_id, NULL, NULL, NULL, NULL, NULL, NULL FROM known_reps
WHERE rep_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'reps'))
UNION ALL SELECT 'distributor', distributor_id, NULL, NULL, NULL, NULL, NULL, NULL FROM known_distributors
WHERE distributor_id IN (SELECT jsonb_array_elements_text($1::jsonb -> 'distributors'))
"""


async def load_known_masters(conn: asyncpg.Connection, refs: References) -> KnownMasters:
    """The masters `refs` names that this service knows, in one round trip."""
    return (await load_masters_and_places(conn, refs))[0]


async def load_masters_and_places(
    conn: asyncpg.Connection, refs: References
) -> tuple[KnownMasters, dict[str, OutletPlace]]:
    """The masters `refs` names that this service knows, and the place (load_outlet_places) of each of its
    outlets that is known, in one round trip."""
    rows = await conn.fetch(
        _KNOWN_MASTERS,
        {
            "outlets": list(refs.outlets),
            "skus": list(refs.skus),
            "reps": list(refs.reps),
            "distributors": list(refs.distributors),
        },
    )
    return _masters_of(rows)


_ALL_MASTERS = """
SELECT 'outlet' AS kind, o.outlet_id AS id, o.distributor_id, o.beat_id, o.channel,
       coalesce(g.lat, o.lat) AS lat, coalesce(g.lon, o.lon) AS lon, NULL::numeric AS gst_rate
FROM known_outlets o LEFT JOIN outlet_geotags g USING (outlet_id)
UNION ALL SELECT 'sku', sku_id, NULL, NULL, NULL, NULL, NULL, gst_rate FROM known_skus
UNION ALL SELECT 'rep', rep_id, NULL, NULL, NULL, NULL, NULL, NULL FROM known_reps
UNION ALL SELECT 'distributor', distributor_id, NULL, NULL, NULL, NULL, NULL, NULL FROM known_distributors
LIMIT $1
"""


async def load_all_masters(
    conn: asyncpg.Connection, max_rows: int
) -> tuple[KnownMasters, dict[str, OutletPlace]] | None:
    """Every master this service knows, with every outlet's place, as load_masters_and_places reads those named;
    None if there are more than `max_rows`."""
    rows = await conn.fetch(_ALL_MASTERS, max_rows + 1)
    return None if len(rows) > max_rows else _masters_of(rows)


def _masters_of(rows: list[asyncpg.Record]) -> tuple[KnownMasters, dict[str, OutletPlace]]:
    ids: dict[str, list[str]] = {"sku": [], "rep": [], "distributor": []}
    outlet_distributor, outlet_beat, places, gst_rates = {}, {}, {}, {}
    for kind, master_id, distributor_id, beat_id, channel, lat, lon, gst_rate in rows:
        if kind == "outlet":
            outlet_distributor[master_id] = distributor_id
            outlet_beat[master_id] = beat_id
            places[master_id] = OutletPlace(channel, None if lat is None else Point(lat, lon))
        else:
            ids[kind].append(master_id)
            if gst_rate is not None:
                gst_rates[master_id] = gst_rate
    known = KnownMasters(
        outlet_distributor=outlet_distributor,
        skus=frozenset(ids["sku"]),
        reps=frozenset(ids["rep"]),
        distributors=frozenset(ids["distributor"]),
        outlet_beat=outlet_beat,
        sku_gst_rates=gst_rates,
    )
    return known, places


_UNITS_PER_CASE = "SELECT sku_id, units_per_case FROM known_skus WHERE sku_id = ANY($1::text[]) AND units_per_case > 0"


async def load_units_per_case(conn: asyncpg.Connection, skus: set[str]) -> dict[str, int]:
    """The case size of each of `skus` that has one (orders entered in cases + units)."""
    if not skus:
        return {}
    return {r["sku_id"]: r["units_per_case"] for r in await conn.fetch(_UNITS_PER_CASE, sorted(skus))}


_REP_TERRITORY = "SELECT distributor_ids, beat_ids FROM known_reps WHERE rep_id = $1"
_ORDER_REPS = """
SELECT b.distributor_id, b.business_id AS order_id, b.rep_id FROM business_keys b
JOIN unnest($1::text[], $2::text[]) AS k (distributor_id, business_id) USING (distributor_id, business_id)
WHERE b.event_type = 'OrderCaptured'
"""
"""The rep of each accepted order among the keys: an order's business key holds who captured it (migration 0008)."""


_OUTLET_PLACES = """
SELECT o.outlet_id, o.channel, coalesce(g.lat, o.lat) AS lat, coalesce(g.lon, o.lon) AS lon
FROM known_outlets o LEFT JOIN outlet_geotags g USING (outlet_id)
WHERE o.outlet_id = ANY($1::text[])
"""


def checked_outlets(events: list[Envelope]) -> set[str]:
    """The outlets of the batch's orders and visits: those whose places the location checks read."""
    return {
        str(outlet)
        for e in events
        if e.event_type in CHECKED_EVENT_TYPES
        and (outlet := getattr(getattr(e, "payload", None), "outlet_id", None)) is not None
    }


async def load_outlet_places(conn: asyncpg.Connection, events: list[Envelope]) -> dict[str, OutletPlace]:
    """Channel and geotag of the outlets of the batch's orders and visits (an admin's geotag wins)."""
    outlets = sorted(checked_outlets(events))
    if not outlets:
        return {}
    rows = await conn.fetch(_OUTLET_PLACES, outlets)
    return {
        r["outlet_id"]: OutletPlace(r["channel"], None if r["lat"] is None else Point(r["lat"], r["lon"])) for r in rows
    }


async def load_rep_territory(conn: asyncpg.Connection, rep_id: str) -> RepTerritory | None:
    """The distributors and beats a rep covers, if the rep is known."""
    row = await conn.fetchrow(_REP_TERRITORY, rep_id)
    return None if row is None else RepTerritory(frozenset(row["distributor_ids"]), frozenset(row["beat_ids"]))


async def load_territories(
    connection: Callable[[], Awaitable[asyncpg.Connection]],
    principal: Principal,
    events: list[Envelope],
    masters: "MastersCache | None" = None,
) -> Territories:
    """The posting rep's territory (from `masters`, the worker's copy, if given) and the reps of the orders the
    batch cancels or delivers (only what the rules in territory.py read for this principal: nothing for an
    admin). `connection` is called only for what must be read."""
    if principal.role is Role.ADMIN:
        return Territories()
    rep = None
    if principal.role is Role.REP:
        if masters is not None:
            rep = await masters.rep_territory(connection, principal.subject)
        else:
            rep = await load_rep_territory(await connection(), principal.subject)
    order_reps: dict[OrderKey, str] = {}
    if principal.role is Role.REP and (acted_on := sorted(orders_acted_on(events))):
        rows = await (await connection()).fetch(_ORDER_REPS, [k[0] for k in acted_on], [k[1] for k in acted_on])
        order_reps = {(r["distributor_id"], r["order_id"]): r["rep_id"] for r in rows}
    return Territories(rep, with_batch_orders(order_reps, events))


async def store_events(
    conn: asyncpg.Connection,
    events: list[Envelope],
    recorded_at: datetime,
    derived: Mapping[UUID, OutboxRecord] | None = None,
) -> StoreOutcome:
    """Record each new event_id and queue its event, stamped as accepted at `recorded_at`, in the outbox,
    atomically; an event recording a fact with a business id (an order, a delivery, ...) also claims it.
    `derived`: the outbox record of an event order-capture derives from an event of `events` (its LocationChecked),
    queued right after it, in the same multi-row insert, when and only when that event is accepted.

    `events` must have distinct event_ids. Concurrent requests carrying the same event_id (or order) serialise
    on the primary key: exactly one of them accepts it, the others see a duplicate (or a reused id). Keys are
    inserted in one order (sorted) by every request, so overlapping batches posted concurrently in different
    orders wait for each other instead of deadlocking.
    """
    if not events:
        return StoreOutcome(set(), set(), set())
    forms = [accepted_form(e, recorded_at) for e in events]
    hashes = {f.event.event_id: f.content_hash for f in forms}
    by_id = sorted(forms, key=lambda f: f.event.event_id)
    async with conn.transaction():
        inserted = await conn.fetch(
            "INSERT INTO idempotency_keys (event_id, content_hash, event_type) "
            "SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
            [f.event.event_id for f in by_id],
            [f.content_hash for f in by_id],
            [f.event.event_type for f in by_id],
        )
        new_ids = {row["event_id"] for row in inserted}
        captured_alike, fact_reused = await _claim_facts(conn, [f for f in forms if f.event.event_id in new_ids])
        accepted = new_ids - captured_alike - fact_reused.keys()
        records: list[OutboxRecord] = []
        for f in forms:
            if (e := f.event).event_id in accepted:
                records.append(OutboxRecord(e.event_id, e.event_type, e.schema_version, f.key, f.value, e.causation_id))
                if derived and (follower := derived.get(e.event_id)) is not None:
                    records.append(follower)
        await append_records_to_outbox(conn, records)
        seen_before = [f for f in forms if f.event.event_id not in new_ids]
        previous = (
            await conn.fetch(
                "SELECT event_id, content_hash FROM idempotency_keys WHERE event_id = ANY($1::uuid[])",
                [f.event.event_id for f in seen_before],
            )
            if seen_before
            else []
        )
    events_by_id = {f.event.event_id: f.event for f in forms}
    reused = {
        r["event_id"]
        for r in previous
        if (stored := bytes(r["content_hash"])) != hashes[r["event_id"]]
        # Only for a mismatch (rare): the record may predate canonical decimals, or the event's current version.
        and stored != legacy_content_hash(events_by_id[r["event_id"]])
        and stored not in earlier_version_hashes(events_by_id[r["event_id"]])
    }
    duplicates = {f.event.event_id for f in seen_before} - reused
    return StoreOutcome(accepted, duplicates | captured_alike, reused, fact_reused)


async def _claim_facts(conn: asyncpg.Connection, new: list[Accepted]) -> tuple[set[UUID], dict[UUID, UUID]]:
    """Claim the business key of each new event in `new` that has one (batch order: the first of a batch wins).
    Returns the event_ids whose fact was already accepted with the same content (duplicates), and those whose
    fact was accepted with other content (-> the event it was accepted as). Both lose their idempotency record,
    so a retry of either is judged the same way again."""
    facts = sorted((f for f in new if f.business_key is not None), key=lambda f: f.business_key or ("", "", ""))
    if not facts:
        return set(), {}
    keys = [f.business_key for f in facts if f.business_key]
    # An order's key also records its rep, for the ownership rule on its cancellation or delivery (territory.py):
    # the key is claimed by the accepted order only, first accepted wins, as the rule wants.
    claimed = await conn.fetch(
        "INSERT INTO business_keys (event_type, distributor_id, business_id, event_id, body_hash, rep_id) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::bytea[], $6::text[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        *(list(column) for column in zip(*keys, strict=True)),
        [f.event.event_id for f in facts],
        [f.body_hash for f in facts],
        [f.event.payload.rep_id if isinstance(f.event, OrderCaptured) else None for f in facts],
    )
    won = {row["event_id"] for row in claimed}
    lost = [f for f in facts if f.event.event_id not in won]
    if not lost:
        return set(), {}
    lost_keys = [f.business_key for f in lost if f.business_key]
    holders = {
        (row["event_type"], row["distributor_id"], row["business_id"]): (row["event_id"], row["body_hash"])
        for row in await conn.fetch(
            "SELECT b.event_type, b.distributor_id, b.business_id, b.event_id, b.body_hash FROM business_keys b "
            "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (event_type, distributor_id, business_id) "
            "USING (event_type, distributor_id, business_id)",
            *(list(column) for column in zip(*lost_keys, strict=True)),
        )
    }
    alike: set[UUID] = set()
    reused: dict[UUID, UUID] = {}
    for f in lost:
        assert f.business_key is not None
        holder, body_hash = holders[f.business_key]
        if body_hash is not None and bytes(body_hash) == f.body_hash:
            alike.add(f.event.event_id)
        else:
            reused[f.event.event_id] = holder
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE event_id = ANY($1::uuid[])", [f.event.event_id for f in lost]
    )
    return alike, reused


class PgBatchStore:
    """handlers/accept_batch.BatchStore on one pooled connection, taken on first use (a batch refused before it
    reads anything, such as a forbidden one, takes none) and given back on exit: masters, territories and outlet
    places read, then the accepted events and their outbox rows written in one transaction (store_events)."""

    def __init__(self, pool: asyncpg.Pool, masters: "MastersCache | None" = None) -> None:
        self._pool = pool
        self._masters = masters
        """This worker's copy of the masters (masters_cache.py), if it keeps one."""
        self._conn: asyncpg.Connection | None = None
        self._looked_up: set[str] = set()
        """Outlets `known_masters` looked up: their places (those known) are in `_places`."""
        self._places: dict[str, OutletPlace] = {}

    async def __aenter__(self) -> "PgBatchStore":
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._conn is not None:
            await self._pool.release(self._conn)
            self._conn = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None:
            self._conn = await self._pool.acquire()
        return self._conn

    async def units_per_case(self, skus: set[str]) -> dict[str, int]:
        return await load_units_per_case(await self._connection(), skus)

    async def known_masters(self, refs: References) -> KnownMasters:
        if self._masters is not None:
            known, self._places = await self._masters.masters_and_places(self._connection, refs)
        else:
            known, self._places = await load_masters_and_places(await self._connection(), refs)
        self._looked_up = set(refs.outlets)
        return known

    async def territories(self, principal: Principal, events: list[Envelope]) -> Territories:
        return await load_territories(self._connection, principal, events, self._masters)

    async def outlet_places(self, events: list[Envelope]) -> dict[str, OutletPlace]:
        # Read with the masters when it looked up every outlet asked for (an outlet not found is unknown to both
        # statements alike): one round trip per batch instead of two.
        outlets = checked_outlets(events)
        if outlets <= self._looked_up:
            return {o: place for o in outlets if (place := self._places.get(o)) is not None}
        return await load_outlet_places(await self._connection(), events)

    async def store(
        self, events: list[Envelope], recorded_at: datetime, derived: Mapping[UUID, OutboxRecord]
    ) -> StoreOutcome:
        return await store_events(await self._connection(), events, recorded_at, derived)
