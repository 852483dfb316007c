"""Applies a batch of reference, scheme and trade events and emits the benefits and assessments that changed.

One call = one Postgres transaction (the consumer's). Steps:
1. store masters, scheme events, orders, cancellations and retailer returns (state survives restarts;
   SchemesState is rebuilt from the stored scheme events every batch);
2. evaluate the orders that need it: new orders, every stored order inside the validity window of a scheme
   whose definition changed (a new scheme can also change how others stack on those orders), and the
   orders (inside any scheme's window) whose outlet, distributor, region or SKU master changed; the result
   replaces what those orders earned, and cancelled orders earn nothing;
3. re-allocate the budget of every scheme whose earned set or definition changed, or that granted something
   at an outlet with a new retailer return (grants.py: returns reverse grants, domain/returns.py), and emit
   SchemeApplied for the grants that changed;
4. assess the batch's claims, and re-assess the stored claims of every re-allocated scheme (claims.py);
   emit ClaimAssessed for the assessments that changed.
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from scheme_engine import derived, store
from scheme_engine.claims import reassess_claims, store_claims
from scheme_engine.domain import SchemeEvent, SchemesState, evaluate
from scheme_engine.grants import reallocate
from scheme_engine.masters import MASTER_CLASSES, upsert_masters
from scheme_engine.returns import retailer_returns, schemes_granted_at, store_returns
from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.schemes import SchemeAmended, SchemeClaimSubmitted, SchemeEnded, SchemeLaunched
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, ReturnRecorded
from sellthrough_runtime.applier import Handler
from sellthrough_runtime.outbox import append_to_outbox

_SCHEME_EVENTS = (SchemeLaunched, SchemeAmended, SchemeEnded)
CONSUMES: tuple[type[Envelope], ...] = (
    *MASTER_CLASSES,
    *_SCHEME_EVENTS,
    SchemeClaimSubmitted,
    OrderCaptured,
    OrderCancelled,
    ReturnRecorded,
)
SCHEME_ENGINE_TYPES = type_names(CONSUMES)
"""What the engine's consumer applies: masters, scheme definitions and claims, orders, cancellations and returns."""


def scheme_handler() -> Handler:
    async def apply(conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        # One batch at a time across instances: a batch reads every scheme and re-allocates whole schemes, so
        # two instances applying different partitions at once could each miss the other's orders or scheme
        # events. The lock is held to the end of the consumer's transaction; every read below comes after
        # it, so it sees what the previous holder committed.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('scheme-engine.evaluation'))")
        masters = await upsert_masters(conn, events)
        scheme_events: list[SchemeEvent] = [e for e in events if isinstance(e, _SCHEME_EVENTS)]
        orders = [e for e in events if type(e) is OrderCaptured]
        claims = [e for e in events if type(e) is SchemeClaimSubmitted]
        await store.store_scheme_events(conn, scheme_events)
        await store.store_orders(conn, orders)
        cancelled = await store.store_cancellations(conn, [e for e in events if type(e) is OrderCancelled])
        returned_at = await store_returns(conn, retailer_returns(events))
        state = await store.load_schemes(conn)

        redefined = {e.payload.scheme_id for e in scheme_events}
        to_evaluate = {o.event_id for o in orders} | set(cancelled)
        for window in _windows(state, redefined):
            to_evaluate.update(await store.orders_between(conn, *window))
        all_schemes = _windows(state, set(state.schemes))
        if masters and all_schemes:
            # An order judged before its outlet's channel or its SKU's brand was known is judged again.
            start, end = min(w[0] for w in all_schemes), max(w[1] for w in all_schemes)
            to_evaluate.update(await store.orders_of_masters(conn, masters, start, end))
        touched = set(redefined) | await schemes_granted_at(conn, returned_at)
        if to_evaluate:
            contexts = await store.order_contexts(conn, to_evaluate)
            # Budgets are allocated per scheme below, from what each order earned: evaluate without a ledger.
            earned = [benefit for order in contexts for benefit in evaluate(order, state)]
            touched |= await store.replace_earned(conn, sorted(to_evaluate), earned)

        emitted: list[Envelope] = []
        for scheme_id in sorted(touched):
            for grant, revision in await reallocate(conn, scheme_id, state.get(scheme_id)):
                emitted.append(derived.scheme_applied(grant, revision))
        claimed = await store_claims(conn, claims)
        emitted += await reassess_claims(conn, touched | claimed, state)
        await append_to_outbox(conn, emitted)

    return apply


def _windows(state: SchemesState, scheme_ids: set[str]) -> list[tuple[datetime, datetime]]:
    """Event-time windows in which orders may earn under any version of these schemes."""
    windows = []
    for scheme_id in sorted(scheme_ids):
        history = state.get(scheme_id)
        versions = history.versions if history is not None else ()
        if versions:
            windows.append(
                (min(v.definition.valid_from for v in versions), max(v.definition.valid_to for v in versions))
            )
    return windows
