from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from order_capture.domain.territory import RepTerritory
from sellthrough_contracts import parse_event
from sellthrough_contracts.reference import OutletRegistered, RepRegistered, SkuRegistered
from sellthrough_contracts.schemes import SchemeClaimSubmitted, SchemeLaunched
from sellthrough_contracts.trade import OrderCaptured, OrderDelivered, PrimaryInvoiced, StockCounted, VisitRecorded
from sellthrough_devstack.demo import DemoBrand, DemoSize, generate, line_count
from sellthrough_devstack.demo_brand import BEAT_DAYS
from sellthrough_devstack.demo_history import OVERSTOCK_FACTOR, TREND, WEEKDAY_FACTOR, percent_entitlement

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
SIZE = DemoSize(distributors=12, outlets=600, skus=40, reps=30, orders=1500, days=42)


@pytest.fixture(scope="module")
def brand() -> DemoBrand:
    return generate(SIZE, seed=3, now=NOW)


def test_demo_brand_is_deterministic_for_a_seed(brand: DemoBrand) -> None:
    again = generate(SIZE, seed=3, now=NOW)
    assert again.reference == brand.reference
    assert again.schemes == brand.schemes
    assert again.history == brand.history


def test_every_event_passes_the_contract_and_nothing_is_in_the_future(brand: DemoBrand) -> None:
    events = [parse_event(e) for e in [*brand.reference, *brand.schemes, *brand.history]]
    assert all(e.occurred_at < NOW for e in events)
    assert len({e.event_id for e in events}) == len(events)
    assert [e["occurred_at"] for e in brand.history] == sorted(e["occurred_at"] for e in brand.history)


def test_orders_come_from_a_rep_of_the_distributor_on_the_outlets_beat_day(brand: DemoBrand) -> None:
    reference = [parse_event(e) for e in brand.reference]
    outlets = {e.payload.outlet_id: e.payload for e in reference if isinstance(e, OutletRegistered)}
    reps = {e.payload.rep_id: e.payload.distributor_id for e in reference if isinstance(e, RepRegistered)}
    skus = {e.payload.sku_id for e in reference if isinstance(e, SkuRegistered)}
    assert (len(outlets), len(skus), len(reps)) == (600, 40, 30)
    orders = [parse_event(e) for e in brand.orders]
    assert len(orders) == 1500
    assert line_count(brand.history) == sum(len(o["payload"]["lines"]) for o in brand.orders)
    for o in orders:
        assert isinstance(o, OrderCaptured)
        outlet = outlets[o.payload.outlet_id]
        assert outlet.distributor_id == o.payload.distributor_id
        assert reps[o.payload.rep_id] == o.payload.distributor_id
        assert o.actor == o.payload.rep_id
        assert {line.sku_id for line in o.payload.lines} <= skus
        # Beat ids read BEAT-<rep number>-<weekday>: the rep walks that beat on that weekday only.
        assert outlet.beat_id == f"BEAT-{o.payload.rep_id[4:]}-{BEAT_DAYS[o.occurred_at.weekday()]}"


def test_deliveries_fulfil_existing_orders_never_beyond_the_ordered_units(brand: DemoBrand) -> None:
    orders = {o.payload.order_id: o for o in map(parse_event, brand.orders) if isinstance(o, OrderCaptured)}
    deliveries = [e for e in map(parse_event, brand.history) if isinstance(e, OrderDelivered)]
    assert 0.5 * len(orders) < len(deliveries) < len(orders)
    short = 0
    for d in deliveries:
        order = orders[d.payload.order_id]
        assert (d.payload.outlet_id, d.payload.distributor_id) == (
            order.payload.outlet_id,
            order.payload.distributor_id,
        )
        assert d.occurred_at > order.occurred_at
        ordered = {line.sku_id: line.quantity for line in order.payload.lines}
        assert {line.sku_id for line in d.payload.lines} == set(ordered)
        assert all(line.quantity <= ordered[line.sku_id] for line in d.payload.lines)
        short += any(line.quantity < ordered[line.sku_id] for line in d.payload.lines)
    assert 0.05 * len(deliveries) < short < 0.3 * len(deliveries), "some short fills, so fill rate means something"


def test_weekly_seasonality_saturday_peak_and_no_sunday_beats(brand: DemoBrand) -> None:
    orders: dict[int, int] = defaultdict(int)
    units: dict[int, int] = defaultdict(int)
    for o in map(parse_event, brand.orders):
        assert isinstance(o, OrderCaptured)
        orders[o.occurred_at.weekday()] += 1
        units[o.occurred_at.weekday()] += sum(line.quantity for line in o.payload.lines)
    assert orders[6] == 0, "no beats on Sunday"
    designed = WEEKDAY_FACTOR[5] / WEEKDAY_FACTOR[0]  # Saturday against Monday and Wednesday (both 1.0)
    saturday_basket = units[5] / orders[5]
    midweek_basket = (units[0] + units[2]) / (orders[0] + orders[2])
    assert designed * 0.85 < saturday_basket / midweek_basket < designed * 1.15
    # More orders on Saturday too, though fewer than designed: an outlet orders at most once per visit.
    assert 1.1 < orders[5] / ((orders[0] + orders[2]) / 2) < designed * 1.1


def test_invoices_and_counts_name_known_masters_and_overstock_is_as_designed(brand: DemoBrand) -> None:
    reference = [parse_event(e) for e in brand.reference]
    skus = {e.payload.sku_id for e in reference if isinstance(e, SkuRegistered)}
    distributors = {e.payload.distributor_id for e in reference if isinstance(e, OutletRegistered)}
    history = [parse_event(e) for e in brand.history]
    invoiced: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    counts = openings = 0
    for e in history:
        if isinstance(e, PrimaryInvoiced):
            assert e.payload.distributor_id in distributors
            assert {line.sku_id for line in e.payload.lines} <= skus
            invoiced[e.payload.distributor_id] += sum(line.quantity for line in e.payload.lines)
        elif isinstance(e, StockCounted):
            assert e.payload.distributor_id in distributors
            assert {line.sku_id for line in e.payload.lines} <= skus
            openings += e.payload.purpose == "opening"
            counts += e.payload.purpose == "count"
        elif isinstance(e, OrderCaptured):
            sold[e.payload.distributor_id] += sum(line.quantity for line in e.payload.lines)
    assert openings == len(sold)
    assert counts >= 2
    assert brand.overstocked
    assert set(brand.overstocked) <= set(sold)
    for distributor_id, units in sold.items():
        ratio = invoiced[distributor_id] / units
        expected = OVERSTOCK_FACTOR if distributor_id in brand.overstocked else 1.0
        assert expected * 0.95 < ratio < expected * 1.15, (distributor_id, ratio)


def test_schemes_and_claims_are_valid_and_target_real_zones_and_distributors(brand: DemoBrand) -> None:
    schemes = [parse_event(e) for e in brand.schemes]
    assert all(isinstance(s, SchemeLaunched) for s in schemes)
    kinds = {s.payload.benefit.kind for s in schemes if isinstance(s, SchemeLaunched)}
    assert {"percent_discount", "quantity_slabs", "buy_x_get_y"} <= kinds
    assert all(s.payload.total_budget for s in schemes if isinstance(s, SchemeLaunched))
    claims = [e for e in map(parse_event, brand.history) if isinstance(e, SchemeClaimSubmitted)]
    assert len(claims) == 2
    outlets = {
        e.payload.outlet_id: e.payload.distributor_id
        for e in map(parse_event, brand.reference)
        if isinstance(e, OutletRegistered)
    }
    scheme_ids = {s.payload.scheme_id for s in schemes if isinstance(s, SchemeLaunched)}
    for claim in claims:
        assert claim.payload.scheme_id in scheme_ids
        assert all(outlets[line.outlet_id] == claim.payload.distributor_id for line in claim.payload.lines)


def test_a_gentle_upward_trend(brand: DemoBrand) -> None:
    units_per_day: dict[date, int] = defaultdict(int)
    for o in brand.orders:
        units_per_day[datetime.fromisoformat(o["occurred_at"]).date()] += sum(
            li["quantity"] for li in o["payload"]["lines"]
        )
    # Whole weeks (the same mix of weekdays) from each end of the history.
    ordered = [units_per_day[d] for d in sorted(units_per_day)]
    first_weeks, last_weeks = sum(ordered[:12]), sum(ordered[-12:])
    assert 1.0 + TREND / 2 < last_weeks / first_weeks < 1.0 + 3 * TREND


def test_one_claim_is_honest_and_one_padded(brand: DemoBrand) -> None:
    sku_brand = {e["payload"]["sku_id"]: e["payload"]["brand"] for e in brand.reference if "brand" in e["payload"]}
    tea = parse_event(brand.schemes[0])
    assert isinstance(tea, SchemeLaunched)
    honest, padded = [parse_event(e) for e in brand.history if e["event_type"] == "SchemeClaimSubmitted"]
    for claim in (honest, padded):
        assert isinstance(claim, SchemeClaimSubmitted)
        entitled: dict[str, Decimal] = defaultdict(Decimal)
        for order in brand.orders:
            at, payload = datetime.fromisoformat(order["occurred_at"]), order["payload"]
            if claim.payload.period_from <= at < claim.payload.period_to and (
                payload["distributor_id"] == claim.payload.distributor_id
            ):
                entitled[payload["outlet_id"]] += percent_entitlement(order, sku_brand, "Sunrise Tea", Decimal(8), 6)
        claimed = {line.outlet_id: line.amount for line in claim.payload.lines}
        over = {o for o, amount in claimed.items() if amount != entitled[o]}
        assert len(over) == (0 if claim is honest else 1)


def test_every_order_has_its_productive_visit_and_some_calls_end_without_an_order() -> None:
    brand = generate(DemoSize(distributors=6, outlets=120, skus=20, reps=12, orders=300, days=28), seed=5)
    visits = [parse_event(e) for e in brand.history if e["event_type"] == "VisitRecorded"]
    orders = [parse_event(e) for e in brand.orders]
    productive = {v.payload.visit_id: v for v in visits if v.payload.productive}  # type: ignore[attr-defined]
    unproductive = [v for v in visits if not v.payload.productive]  # type: ignore[attr-defined]
    for order in orders:
        visit = productive[order.payload.visit_id]  # type: ignore[attr-defined]
        assert (visit.payload.outlet_id, visit.payload.rep_id) == (order.payload.outlet_id, order.payload.rep_id)  # type: ignore[attr-defined]
    assert len(productive) == len(orders)
    assert len(unproductive) == round(len(orders) * 0.3)
    assert all(v.payload.no_order_reason for v in unproductive)  # type: ignore[attr-defined]


def test_every_field_event_of_the_demo_is_inside_its_reps_territory(brand: DemoBrand) -> None:
    # `make dev` loads as admin, but a rep's phone posting the same events must not be refused outside_territory.
    reference = [parse_event(e) for e in brand.reference]
    outlets = {e.payload.outlet_id: e.payload for e in reference if isinstance(e, OutletRegistered)}
    territories = {
        e.payload.rep_id: RepTerritory(
            frozenset({e.payload.distributor_id, *e.payload.also_covers_distributor_ids}), frozenset(e.payload.beat_ids)
        )
        for e in reference
        if isinstance(e, RepRegistered)
    }
    assert all(t.beats for t in territories.values()), "the demo reps work named beats"
    field_events = [e for e in map(parse_event, brand.history) if isinstance(e, OrderCaptured | VisitRecorded)]
    assert field_events
    for e in field_events:
        outlet = outlets[e.payload.outlet_id]
        assert territories[e.payload.rep_id].covers(outlet.distributor_id, outlet.beat_id), e


def test_the_field_days_are_left_to_the_simulator_and_the_claims_stop_before_them() -> None:
    """`make dev` has the simulator capture the reps' last days on their phones: the history leaves those days'
    orders, visits and deliveries out, and its claims end where they begin, so the honest claim stays exact."""
    whole = generate(SIZE, seed=3, now=NOW)
    brand = generate(SIZE, seed=3, now=NOW, field_days=7)
    field_from = datetime(2026, 11, 16, tzinfo=UTC)
    events = [parse_event(e) for e in brand.history]
    captured = [e for e in events if isinstance(e, OrderCaptured | VisitRecorded)]
    assert captured
    assert all(e.occurred_at < field_from for e in captured)
    order_ids = {o["payload"]["order_id"] for o in brand.orders}
    delivered = [e for e in events if isinstance(e, OrderDelivered)]
    assert delivered
    assert all(e.payload.order_id in order_ids for e in delivered)
    in_field_days = [o for o in whole.orders if datetime.fromisoformat(o["occurred_at"]) >= field_from]
    assert brand.field_orders == len(in_field_days) > 0
    assert len(brand.orders) == len(whole.orders) - len(in_field_days)
    # Invoices and counts are sized to the whole demand, which the simulator's orders stand in for.
    stock_types = (PrimaryInvoiced, StockCounted)
    assert [e for e in events if isinstance(e, stock_types)] == [
        e for e in map(parse_event, whole.history) if isinstance(e, stock_types)
    ]
    claims = [e for e in events if isinstance(e, SchemeClaimSubmitted)]
    assert claims
    assert all(c.payload.period_to == field_from for c in claims)


def test_with_field_days_one_claim_is_still_honest_and_one_padded() -> None:
    test_one_claim_is_honest_and_one_padded(generate(SIZE, seed=3, now=NOW, field_days=7))
