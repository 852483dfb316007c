"""Who may write where: per-event rules after the references are known. Pure: no I/O.

Role and event type, actor, and device are checked for the whole batch first (policy.py, a 403). What is
checked here depends on reference data that can change while a phone is offline (an outlet moved to another
beat, a rep reassigned), so each event is rejected on its own with a reason, and the rest of a batch synced
after days offline still goes in:

- a rep writes only at outlets of the distributors it covers (RepRegistered `distributor_id` and
  `also_covers_distributor_ids`), and, when it has `beat_ids`, only at outlets on those beats
  (`outside_territory`); a rep's event without an outlet (a return from the distributor's own stock) must name
  one of its distributors;
- a connector or a distributor's login writes only for the distributors its token is bound to
  (`distributor_not_bound`; a distributor login is bound to itself, a connector with none is bound to none);
- an OrderCancelled or OrderDelivered is for an order of the poster: the order's own rep, a token bound to the
  order's distributor, or an admin. A rep cancelling an order order-capture has not accepted (nor in the same
  batch) is rejected `unknown_order`, another rep's order `not_own_order`. A connector's or a distributor's
  delivery or cancellation of an order not accepted yet is let through when its distributor is bound: a
  distributor's system often reports the delivery before the rep's phone syncs the order.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from order_capture.domain.validation import KnownMasters, Reason, Rejection
from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.trade import OrderCancelled, OrderCaptured, OrderDelivered
from sellthrough_runtime.auth import Principal, Role

OWNED_ORDER_EVENT_TYPES = type_names((OrderCancelled, OrderDelivered))
"""Events that act on an order someone else may have captured."""


@dataclass(frozen=True)
class RepTerritory:
    distributors: frozenset[str]
    beats: frozenset[str] = frozenset()
    """Empty: every beat of its distributors."""

    def covers(self, distributor_id: str, beat_id: str | None) -> bool:
        if distributor_id not in self.distributors:
            return False
        return not self.beats or beat_id in self.beats


OrderKey = tuple[str, str]
"""(distributor_id, order_id): an order id is unique per distributor."""


@dataclass(frozen=True)
class Territories:
    """What the rules need beyond KnownMasters, loaded for one batch."""

    rep: RepTerritory | None = None
    """The posting rep's territory; None when the poster is not a rep or the rep is not registered."""
    order_reps: Mapping[OrderKey, str] = field(default_factory=dict)
    """The rep of each order the batch acts on that order-capture has accepted."""


def orders_acted_on(events: list[Envelope]) -> set[OrderKey]:
    return {
        (str(payload.distributor_id), str(payload.order_id))
        for event in events
        if event.event_type in OWNED_ORDER_EVENT_TYPES and (payload := getattr(event, "payload", None)) is not None
    }


def with_batch_orders(order_reps: Mapping[OrderKey, str], events: list[Envelope]) -> dict[OrderKey, str]:
    """`order_reps` and the orders captured in the batch itself: a phone syncs an order and its cancellation
    together. An order already accepted keeps its rep (the first accepted wins)."""
    batch = {
        (e.payload.distributor_id, e.payload.order_id): e.payload.rep_id for e in events if isinstance(e, OrderCaptured)
    }
    return {**batch, **order_reps}


def check_territory(
    event: Envelope, principal: Principal, known: KnownMasters, territories: Territories
) -> Rejection | None:
    """Why `principal` may not write this event where it is, or None. Run after check_references, so every
    outlet and distributor named is known."""
    if principal.role is Role.ADMIN:
        return None
    payload = getattr(event, "payload", None)
    distributor = getattr(payload, "distributor_id", None)
    if distributor is None:
        return None  # reference and scheme definitions: admin only (policy.py)
    if principal.role is Role.REP:
        return _rep_rule(event, principal, known, territories, distributor)
    if distributor not in principal.distributors:
        bound = ", ".join(sorted(principal.distributors)) or "none"
        return Rejection(
            Reason.DISTRIBUTOR_NOT_BOUND,
            f"this token may write only for its distributors ({bound}), not '{distributor}'",
            event.event_id,
        )
    return None


def _rep_rule(
    event: Envelope, principal: Principal, known: KnownMasters, territories: Territories, distributor: str
) -> Rejection | None:
    payload = getattr(event, "payload", None)
    territory = territories.rep
    if territory is None:
        return Rejection(
            Reason.UNKNOWN_REP,
            f"rep '{principal.subject}' is not registered, so it has no territory yet",
            event.event_id,
        )
    outlet = getattr(payload, "outlet_id", None)
    if outlet is None:
        where = f"distributor '{distributor}'"
        inside = distributor in territory.distributors
    else:
        beat = known.outlet_beat.get(outlet)
        where = f"outlet '{outlet}' (distributor '{known.outlet_distributor.get(outlet, distributor)}', beat "
        where += f"'{beat}')" if beat else "none)"
        inside = territory.covers(known.outlet_distributor.get(outlet, distributor), beat)
    if not inside:
        return Rejection(
            Reason.OUTSIDE_TERRITORY, f"{where} is outside rep '{principal.subject}''s territory", event.event_id
        )
    if event.event_type in OWNED_ORDER_EVENT_TYPES:
        order_id = str(getattr(payload, "order_id", ""))
        owner = territories.order_reps.get((distributor, order_id))
        if owner is None:
            return Rejection(
                Reason.UNKNOWN_ORDER,
                f"order '{order_id}' of distributor '{distributor}' has not been accepted; post the order first",
                event.event_id,
            )
        if owner != principal.subject:
            return Rejection(
                Reason.NOT_OWN_ORDER,
                f"order '{order_id}' of distributor '{distributor}' was captured by rep '{owner}'; a rep acts only "
                "on its own orders",
                event.event_id,
            )
    return None
