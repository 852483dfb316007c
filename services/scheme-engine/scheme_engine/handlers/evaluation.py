"""Applies a batch of reference, scheme and trade events and emits the benefits and assessments that changed.

One call = one Postgres transaction (the consumer's). Steps:
1. store masters, scheme events, orders, cancellations and retailer returns (state survives restarts;
   SchemesState is rebuilt from the stored scheme events every batch);
2. evaluate the orders that need it: new orders, every stored order inside the validity window of a scheme
   whose definition changed (a new scheme can also change how others stack on those orders), and the
   orders (inside any scheme's window) whose outlet, distributor, region or SKU master changed; the result
   replaces what those orders earned, and cancelled orders earn nothing;
3. re-allocate the budget of every scheme whose earned set or definition changed, or that granted something
   at an outlet with a new retailer return (handlers/grants.py), and emit SchemeApplied for the grants
   that changed;
4. assess the batch's claims, and re-assess the stored claims of every re-allocated scheme
   (handlers/claims.py); emit ClaimAssessed for the assessments that changed.
Storage is behind ports.SchemeStore.
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from scheme_engine.adapters.masters import MASTER_CLASSES
from scheme_engine.adapters.postgres import PgSchemeStore
from scheme_engine.domain import SchemeEvent, SchemesState, evaluate
from scheme_engine.domain import events as derived
from scheme_engine.domain.returns import retailer_returns
from scheme_engine.handlers.claims import reassess_claims, store_claims
from scheme_engine.handlers.grants import reallocate
from scheme_engine.handlers.ports import SchemeStore
from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.schemes import SchemeAmended, SchemeClaimSubmitted, SchemeEnded, SchemeLaunched
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, ReturnRecorded
from sellthrough_runtime.applier import Handler

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
        await apply_batch(PgSchemeStore(conn), events)

    return apply


async def apply_batch(store: SchemeStore, events: Sequence[Envelope]) -> None:
    await store.lock()  # before every read below
    masters = await store.upsert_masters(events)
    scheme_events: list[SchemeEvent] = [e for e in events if isinstance(e, _SCHEME_EVENTS)]
    orders = [e for e in events if type(e) is OrderCaptured]
    claims = [e for e in events if type(e) is SchemeClaimSubmitted]
    await store.store_scheme_events(scheme_events)
    await store.store_orders(orders)
    cancelled = await store.store_cancellations([e for e in events if type(e) is OrderCancelled])
    returned_at = await store.store_returns(retailer_returns(events))
    state = await store.load_schemes()

    redefined = {e.payload.scheme_id for e in scheme_events}
    to_evaluate = {o.event_id for o in orders} | set(cancelled)
    for window in _windows(state, redefined):
        to_evaluate.update(await store.orders_between(*window))
    all_schemes = _windows(state, set(state.schemes))
    if masters and all_schemes:
        # An order judged before its outlet's channel or its SKU's brand was known is judged again.
        start, end = min(w[0] for w in all_schemes), max(w[1] for w in all_schemes)
        to_evaluate.update(await store.orders_of_masters(masters, start, end))
    touched = set(redefined) | await store.schemes_granted_at(returned_at)
    if to_evaluate:
        contexts = await store.order_contexts(to_evaluate)
        # Budgets are allocated per scheme below, from what each order earned: evaluate without a ledger.
        earned = [benefit for order in contexts for benefit in evaluate(order, state)]
        touched |= await store.replace_earned(sorted(to_evaluate), earned)

    emitted: list[Envelope] = []
    for scheme_id in sorted(touched):
        for grant, revision in await reallocate(store, scheme_id, state.get(scheme_id)):
            emitted.append(derived.scheme_applied(grant, revision))
    claimed = await store_claims(store, claims)
    emitted += await reassess_claims(store, touched | claimed, state)
    await store.append_to_outbox(emitted)


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
