"""The demo brand's trade history: orders on beat days, deliveries with short fills, weekly primary invoices
(a few distributors deliberately overstocked), opening stock and counts with variances, schemes and claims.

Pure and deterministic for a given random generator and `now`.
"""

import heapq
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

from sellthrough_devstack.demo_brand import Masters, Outlet, event

# Monday..Sunday. Saturday is the weekend stocking day; Sunday has no beats, so no orders at all.
WEEKDAY_FACTOR = (1.0, 0.9, 1.0, 1.1, 1.3, 1.6, 0.0)
TREND = 0.15  # order rate grows 15% over the history: a brand gently gaining distribution
OVERSTOCK_FACTOR = 3.0  # overstocked distributors are invoiced ~3x what they sell through
CLASS_FACTOR = {"A": 2.0, "B": 1.2, "C": 0.7}  # bigger shops buy more per order
DELIVERED_SHARE = 0.7  # the rest have no DMS delivery yet, so fill rate is computed on part of the orders
SHORT_FILL_SHARE = 0.15
UNPRODUCTIVE_VISITS_PER_ORDER = 0.3  # calls that end without an order: a strike rate of about 77%
NO_ORDER_REASONS = ("stock sufficient", "shop closed", "owner absent", "credit limit reached")
OPENING_COVER_DAYS = 12  # about two weeks of stock, comfortably between the ledger's cover norms


@dataclass
class History:
    schemes: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    trade: list[dict[str, Any]] = field(default_factory=list)  # everything else: deliveries, invoices, counts
    claims: list[dict[str, Any]] = field(default_factory=list)
    overstocked: list[str] = field(default_factory=list)
    field_orders: int = 0  # orders of the field force's days, left out (build_history's `field_from`)


def day_start(now: datetime, days: int) -> datetime:
    """Midnight UTC of the history's first day; the history ends with yesterday, so nothing is in the future."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return today - timedelta(days=days)


def build_history(
    rng: random.Random, masters: Masters, now: datetime, days: int, orders: int, field_from: datetime | None = None
) -> History:
    """`field_from`: where the field force's part begins (`make dev` has the simulator capture it through the field
    client): the orders and visits from then on, and those orders' deliveries, are left out; invoices and counts
    are still sized to the whole demand, and the claims end where the field part begins, so they stay exact."""
    history = History()
    start = day_start(now, days)
    history.schemes = _schemes(start, days)
    all_orders, visits = _orders(rng, masters, start, days, orders)
    deliveries = _deliveries(rng, all_orders, now)
    overstocked_count = max(1, len(masters.distributors) // 12)
    history.overstocked = sorted(rng.sample(masters.distributors, min(overstocked_count, len(masters.distributors))))
    stock = _stock(rng, masters, all_orders, history.overstocked, start, days)

    def before_field(event: dict[str, Any]) -> bool:
        return field_from is None or datetime.fromisoformat(event["occurred_at"]) < field_from

    history.orders = [o for o in all_orders if before_field(o)]
    kept = {o["payload"]["order_id"] for o in history.orders}
    history.field_orders = len(all_orders) - len(history.orders)
    history.trade.extend(v for v in visits if before_field(v))
    history.trade.extend(d for d in deliveries if d["payload"]["order_id"] in kept)
    history.trade.extend(stock)
    claims_until = datetime.combine(now.astimezone(UTC).date(), time(), UTC) - timedelta(days=1)
    history.claims = _claims(masters, history.schemes, history.orders, min(claims_until, field_from or claims_until))
    return history


def _rhythm(date: datetime, day: int, days: int) -> float:
    """Weekly seasonality times the gentle trend, for day `day` of `days`."""
    return WEEKDAY_FACTOR[date.weekday()] * (1 + TREND * day / max(days - 1, 1))


def _orders(
    rng: random.Random, m: Masters, start: datetime, days: int, target: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The orders, and the visits: one productive visit per order plus calls that ended without one."""
    # Every (beat, day on the beat's weekday, outlet) is a visit; `target` of them become orders, drawn with
    # weight = weekday factor x trend (Efraimidis-Spirakis keys: weighted sampling without replacement).
    keyed: list[tuple[float, int, Outlet, str, datetime]] = []
    for day in range(days):
        date = start + timedelta(days=day)
        weight = _rhythm(date, day, days)
        if weight <= 0:
            continue
        for beat in m.beats:
            if beat.weekday != date.weekday():
                continue
            for outlet in beat.outlets:
                keyed.append((rng.random() ** (1 / weight), len(keyed), outlet, beat.rep_id, date))
    chosen = sorted(heapq.nlargest(target, keyed), key=lambda k: (k[4], k[1]))
    taken = {k[1] for k in chosen}
    missed = [k for k in keyed if k[1] not in taken]
    unproductive = rng.sample(missed, min(len(missed), round(len(chosen) * UNPRODUCTIVE_VISITS_PER_ORDER)))
    weights = [s.popularity for s in m.skus]
    events = []
    visits = []
    for n, (_, _, outlet, rep_id, date) in enumerate(chosen):
        # Reps work 09:30-18:30 in India (04:00-13:00 UTC): the same calendar day in the brand's time zone.
        at = date + timedelta(hours=4, minutes=rng.randint(0, 540))
        # The rhythm sizes the basket as well as the odds of an order: the odds saturate when most visits
        # become orders, so basket size is what keeps the Saturday peak and the trend visible in the totals.
        size = CLASS_FACTOR[outlet.outlet_class] * _rhythm(date, (date - start).days, days)
        lines = {}
        for sku in rng.choices(m.skus, weights=weights, k=rng.randint(1, 6)):
            base = 24 if sku.price < 40 else 12 if sku.price < 120 else 4
            quantity = max(1, round(rng.randint(1, base) * size))
            lines[sku.sku_id] = {"sku_id": sku.sku_id, "quantity": quantity, "unit_price": f"{sku.price:.2f}"}
        visit_id = f"VIS-{n + 1:07d}"
        payload = {
            "order_id": f"ORD-{n + 1:07d}",
            "outlet_id": outlet.outlet_id,
            "distributor_id": outlet.distributor_id,
            "rep_id": rep_id,
            "visit_id": visit_id,
            "gps": None,
            "lines": list(lines.values()),
        }
        visits.append(_visit(visit_id, outlet, rep_id, at, productive=True))
        events.append(event("OrderCaptured", f"order-{n}", at, rep_id, payload))
    for n, (_, _, outlet, rep_id, date) in enumerate(unproductive):
        at = date + timedelta(hours=4, minutes=rng.randint(0, 540))
        reason = rng.choice(NO_ORDER_REASONS)
        visits.append(_visit(f"VIS-N{n + 1:07d}", outlet, rep_id, at, productive=False, reason=reason))
    return events, visits


def _visit(
    visit_id: str, outlet: Outlet, rep_id: str, at: datetime, *, productive: bool, reason: str | None = None
) -> dict[str, Any]:
    return event(
        "VisitRecorded",
        visit_id,
        at,
        rep_id,
        {
            "visit_id": visit_id,
            "outlet_id": outlet.outlet_id,
            "distributor_id": outlet.distributor_id,
            "rep_id": rep_id,
            "productive": productive,
            "no_order_reason": reason,
            "gps": None,
        },
    )


def _deliveries(rng: random.Random, orders: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    events = []
    for order in orders:
        if rng.random() >= DELIVERED_SHARE:
            continue
        at = datetime.fromisoformat(order["occurred_at"]) + timedelta(hours=rng.randint(18, 40))
        if at >= now:
            continue  # not delivered yet
        lines = [{"sku_id": line["sku_id"], "quantity": line["quantity"]} for line in order["payload"]["lines"]]
        if rng.random() < SHORT_FILL_SHARE:  # the distributor ran short of one SKU
            short = rng.randrange(len(lines))
            lines[short]["quantity"] = rng.randint(0, lines[short]["quantity"] - 1)
        payload = order["payload"]
        delivery = {
            "delivery_id": "DLV-" + payload["order_id"][4:],
            "order_id": payload["order_id"],
            "outlet_id": payload["outlet_id"],
            "distributor_id": payload["distributor_id"],
            "lines": lines,
        }
        events.append(event("OrderDelivered", delivery["delivery_id"], at, "dms-connector", delivery))
    return events


def _stock(
    rng: random.Random,
    m: Masters,
    orders: list[dict[str, Any]],
    overstocked: list[str],
    start: datetime,
    days: int,
) -> list[dict[str, Any]]:
    """Opening balances, weekly replenishment invoices sized to the coming week's sell-through (times
    OVERSTOCK_FACTOR for the overstocked few), and a mid-history count with shrinkage at every fourth
    distributor."""
    # units[distributor][day][sku]: secondary units ordered, which the invoices and counts are sized from
    units: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for order in orders:
        day = (datetime.fromisoformat(order["occurred_at"]) - start).days
        for line in order["payload"]["lines"]:
            units[order["payload"]["distributor_id"]][day][line["sku_id"]] += line["quantity"]
    price = {s.sku_id: s.price for s in m.skus}
    events = []
    for index, distributor_id in enumerate(m.distributors):
        sold = units[distributor_id]
        total: dict[str, int] = defaultdict(int)
        for per_sku in sold.values():
            for sku_id, quantity in per_sku.items():
                total[sku_id] += quantity
        if not total:
            continue
        opening = {s: round(q / days * OPENING_COVER_DAYS) for s, q in sorted(total.items())}
        opening = {s: q for s, q in opening.items() if q > 0} or {max(total, key=total.__getitem__): 1}
        events.append(_count(f"OPEN-{distributor_id}", distributor_id, start, opening, "opening"))
        factor = OVERSTOCK_FACTOR if distributor_id in overstocked else 1.0
        # Weekly invoices on the distributor's own weekday; the first one also covers the days before it.
        bounds = [0, *range(index % 7 + 1, days, 7), days]
        invoiced_by: list[tuple[int, dict[str, int]]] = []
        for week, (first, last) in enumerate(pairwise(bounds)):
            window: dict[str, int] = defaultdict(int)
            for day in range(first, last):
                for sku_id, quantity in sold.get(day, {}).items():
                    window[sku_id] += quantity
            # A little over forecast on average: normal distributors keep a few days' safety stock, not months.
            lines = {s: round(q * factor * rng.uniform(0.97, 1.06)) for s, q in sorted(window.items())}
            lines = {s: q for s, q in lines.items() if q > 0}
            if not lines:
                continue
            invoiced_by.append((first, lines))
            invoice_number = f"INV-{distributor_id[2:]}-{week + 1:03d}"
            date = (start + timedelta(days=first)).date()
            payload = {
                "invoice_number": invoice_number,
                "distributor_id": distributor_id,
                "invoice_date": date.isoformat(),
                "lines": [
                    {"sku_id": s, "quantity": q, "unit_price": f"{price[s] * 0.88:.2f}"}  # distributor margin
                    for s, q in lines.items()
                ],
            }
            at = start + timedelta(days=first, hours=1)
            events.append(event("PrimaryInvoiced", invoice_number, at, "erp-connector", payload))
        if index % 4 == 0 and days >= 14:
            count_day = days - 7
            book = dict(opening)
            for first, lines in invoiced_by:
                if first < count_day:
                    for s, q in lines.items():
                        book[s] = book.get(s, 0) + q
            for day, per_sku in sold.items():
                if day < count_day:
                    for s, q in per_sku.items():
                        book[s] = book.get(s, 0) - q
            counted_skus = sorted(book, key=lambda s: -total[s])[:8]
            # Shrinkage: a few percent missing on most SKUs, a damaged case on one.
            counted = {s: max(0, round(book[s] * rng.uniform(0.9, 1.0))) for s in counted_skus}
            counted[counted_skus[0]] = max(0, counted[counted_skus[0]] - 12)
            events.append(_count(f"CNT-{distributor_id}", distributor_id, start + timedelta(days=count_day), counted))
    return events


def _count(count_id: str, distributor_id: str, at: datetime, lines: dict[str, int], purpose: str = "count") -> Any:
    payload = {
        "count_id": count_id,
        "distributor_id": distributor_id,
        "outlet_id": None,
        "counted_at": at.isoformat(),
        "lines": [{"sku_id": s, "quantity": q} for s, q in lines.items()],
        "purpose": purpose,
    }
    return event("StockCounted", count_id, at, "admin", payload)


def _schemes(start: datetime, days: int) -> list[dict[str, Any]]:
    """Four schemes, one per benefit style, launched during the history; two still run after today."""
    later = start + timedelta(days=days + 30)
    specs: list[dict[str, Any]] = [
        {
            "scheme_id": "SCH-TEA-NORTH",
            "name": "Sunrise Tea 8% off in the North",
            "valid_from": start + timedelta(days=days // 3),
            "valid_to": later,
            "benefit": {"kind": "percent_discount", "percent": "8", "min_quantity": 6},
            "applies_to": {"sku_ids": [], "brands": ["Sunrise Tea"]},
            "targeting": {"zone_ids": ["Z-NORTH"]},
            "total_budget": "250000.00",
        },
        {
            "scheme_id": "SCH-KOKO-SLABS",
            "name": "Koko Biscuits volume slabs for grocers",
            "valid_from": start + timedelta(days=days // 6),
            "valid_to": start + timedelta(days=days * 2 // 3),
            "benefit": {
                "kind": "quantity_slabs",
                "slabs": [
                    {"min_quantity": 12, "percent": "3"},
                    {"min_quantity": 24, "percent": "5"},
                    {"min_quantity": 48, "percent": "8"},
                ],
            },
            "applies_to": {"sku_ids": [], "brands": ["Koko Biscuits"]},
            "targeting": {"channels": ["grocery"], "zone_ids": ["Z-SOUTH", "Z-WEST"]},
            "total_budget": "20000.00",  # runs out before the scheme ends: late orders show budget_exhausted
            "per_outlet_budget": "1500.00",
        },
        {
            "scheme_id": "SCH-SOAP-B12G1",
            "name": "Glow Soap buy 12 get 1 at chemists",
            "valid_from": start + timedelta(days=days // 2),
            "valid_to": later,
            "benefit": {"kind": "buy_x_get_y", "buy_quantity": 12, "free_quantity": 1, "repeating": True},
            "applies_to": {"sku_ids": [], "brands": ["Glow Soap"]},
            "targeting": {"channels": ["chemist", "general store"]},
            "total_budget": "40000.00",
        },
        {
            "scheme_id": "SCH-CHIPS-MT",
            "name": "Crispo Chips modern trade value slabs",
            "valid_from": start + timedelta(days=days // 4),
            "valid_to": start + timedelta(days=days * 3 // 4),
            "benefit": {
                "kind": "order_value_slabs",
                "slabs": [{"min_value": "500.00", "percent": "4"}, {"min_value": "2000.00", "percent": "7"}],
            },
            "applies_to": {"sku_ids": [], "brands": ["Crispo Chips"]},
            # Exclusive, so kept out of the North: the tea scheme's claims there stay simple to check.
            "targeting": {"channels": ["modern trade"], "zone_ids": ["Z-SOUTH", "Z-EAST", "Z-WEST"]},
            "total_budget": "30000.00",
            "exclusive": True,
            "priority": 10,
        },
    ]
    events = []
    for spec in specs:
        launched = spec["valid_from"] - timedelta(days=2)
        payload = {**spec, "valid_from": spec["valid_from"].isoformat(), "valid_to": spec["valid_to"].isoformat()}
        events.append(event("SchemeLaunched", spec["scheme_id"], launched, "admin", payload))
    return events


def percent_entitlement(
    order: dict[str, Any], brands_of: dict[str, str], brand: str, percent: Decimal, min_quantity: int
) -> Decimal:
    """What a percent_discount on `brand` gives one order, by the contract's rule (half-up cents per line)."""
    qualifying = [line for line in order["payload"]["lines"] if brands_of[line["sku_id"]] == brand]
    if sum(line["quantity"] for line in qualifying) < min_quantity:
        return Decimal(0)
    return sum(
        (
            (Decimal(line["unit_price"]) * line["quantity"] * percent / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
            for line in qualifying
        ),
        Decimal(0),
    )


def _claims(m: Masters, schemes: list[dict[str, Any]], orders: list[dict[str, Any]], period_to: datetime) -> list[Any]:
    """Two distributor claims on the tea scheme up to `period_to`: one honest, one padded by a fifth on its biggest
    outlet."""
    tea = schemes[0]["payload"]
    valid_from = datetime.fromisoformat(tea["valid_from"])
    if period_to <= valid_from:
        return []
    brands_of = {s.sku_id: s.brand for s in m.skus}
    targeted = set(tea["targeting"]["zone_ids"])
    per_distributor: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for order in orders:
        at = datetime.fromisoformat(order["occurred_at"])
        p = order["payload"]
        if valid_from <= at < period_to and m.distributor_zone[p["distributor_id"]] in targeted:
            earned = percent_entitlement(order, brands_of, "Sunrise Tea", Decimal("8"), 6)
            if earned:
                per_distributor[p["distributor_id"]][p["outlet_id"]] += earned
    claims = []
    for n, distributor_id in enumerate(sorted(per_distributor)[:2]):
        amounts = dict(sorted(per_distributor[distributor_id].items()))
        if n == 1:
            biggest = max(amounts, key=lambda o: amounts[o])
            amounts[biggest] = (amounts[biggest] * Decimal("1.2")).quantize(Decimal("0.01"), ROUND_HALF_UP)
        lines = [{"outlet_id": o, "amount": f"{a:.2f}", "order_id": None} for o, a in amounts.items()]
        claim_id = f"CLM-{distributor_id[2:]}-001"
        payload = {
            "claim_id": claim_id,
            "scheme_id": tea["scheme_id"],
            "distributor_id": distributor_id,
            "period_from": valid_from.isoformat(),
            "period_to": period_to.isoformat(),
            "claimed_amount": f"{sum(amounts.values(), Decimal(0)):.2f}",
            "lines": lines,
        }
        claims.append(event("SchemeClaimSubmitted", claim_id, period_to + timedelta(hours=6), "admin", payload))
    return claims
