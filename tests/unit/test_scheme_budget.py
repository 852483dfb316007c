"""Budget caps: the event-time rule for who gets the last of a budget, by table and by property."""

import random
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheme_engine.domain import (
    BudgetLedger,
    OrderContext,
    OrderLineContext,
    SchemeBenefit,
    SchemesState,
    allocate_budget,
    evaluate,
)
from sellthrough_contracts.schemes import SchemeAmended, SchemeDefinition, SchemeLaunched
from tests.unit.test_scheme_rules import T0, day, definition, definition_data, envelope, line, only, order

TEN_PERCENT = {"kind": "percent_discount", "percent": "10"}


def forty(number: int, outlet_id: str = "O1", at: float = 1) -> OrderContext:
    """An order that earns 40.00 under TEN_PERCENT: 10% of 10 x 40.00."""
    return order(line("A", 10, "40.00"), number=number, outlet_id=outlet_id, occurred_at=day(at))


def earned(scheme: SchemeDefinition, *orders: OrderContext) -> list[SchemeBenefit]:
    state = SchemesState.of(scheme)
    return [only(evaluate(o, state)) for o in orders]


def grants(allocated: list[SchemeBenefit]) -> list[tuple[str, Decimal, str | None]]:
    return [(b.order_id, b.value, b.limited_by) for b in allocated]


@pytest.mark.parametrize(
    ("caps", "orders", "expected"),
    [
        pytest.param(
            {},
            [forty(1, at=1), forty(2, at=2), forty(3, at=3)],
            [("ORD-1", "40.00", None), ("ORD-2", "40.00", None), ("ORD-3", "40.00", None)],
            id="uncapped",
        ),
        pytest.param(
            {"total_budget": "100"},
            [forty(1, at=1), forty(2, at=2), forty(3, at=3)],
            [("ORD-1", "40.00", None), ("ORD-2", "40.00", None), ("ORD-3", "20.00", "total_budget")],
            id="last_order_gets_the_remainder",
        ),
        pytest.param(
            {"total_budget": "100"},
            [forty(3, at=3), forty(2, at=2), forty(1, at=1)],
            [("ORD-1", "40.00", None), ("ORD-2", "40.00", None), ("ORD-3", "20.00", "total_budget")],
            id="arrival_order_does_not_matter",
        ),
        pytest.param(
            {"total_budget": "60"},
            [forty(1, at=1), forty(2, at=2), forty(3, at=3)],
            [("ORD-1", "40.00", None), ("ORD-2", "20.00", "total_budget"), ("ORD-3", "0.00", "total_budget")],
            id="nothing_after_the_budget_is_spent",
        ),
        pytest.param(
            {"per_outlet_budget": "50"},
            [forty(1, "O1", at=1), forty(2, "O1", at=2), forty(3, "O2", at=3)],
            [("ORD-1", "40.00", None), ("ORD-2", "10.00", "per_outlet_budget"), ("ORD-3", "40.00", None)],
            id="per_outlet_cap_per_outlet",
        ),
        pytest.param(
            {"total_budget": "70", "per_outlet_budget": "50"},
            [forty(1, "O1", at=1), forty(2, "O1", at=2), forty(3, "O2", at=3)],
            # ORD-2: total room 30, outlet room 10; ORD-3: total room 20, outlet room 50.
            [("ORD-1", "40.00", None), ("ORD-2", "10.00", "per_outlet_budget"), ("ORD-3", "20.00", "total_budget")],
            id="the_tighter_cap_wins",
        ),
        pytest.param(
            {"total_budget": "40.0099"},
            [forty(1, at=1), forty(2, at=2)],
            [("ORD-1", "40.00", None), ("ORD-2", "0.00", "total_budget")],
            id="sub_cent_remainder_is_not_granted",
        ),
        pytest.param(
            {"total_budget": "0"},
            [forty(1, at=1)],
            [("ORD-1", "0.00", "total_budget")],
            id="zero_budget_grants_nothing",
        ),
        pytest.param(
            {"total_budget": "50"},
            [forty(7, at=1), forty(3, at=1)],
            [("ORD-3", "40.00", None), ("ORD-7", "10.00", "total_budget")],
            id="same_instant_lower_event_id_first",
        ),
    ],
)
def test_budget_is_consumed_in_event_time_order(
    caps: dict[str, str], orders: list[OrderContext], expected: list[tuple[str, str, str | None]]
) -> None:
    scheme = definition(benefit=TEN_PERCENT, **caps)
    allocated = allocate_budget(scheme, earned(scheme, *orders))
    assert grants(allocated) == [(order_id, Decimal(value), limit) for order_id, value, limit in expected]


def test_a_partial_discount_is_spread_over_the_lines_by_what_they_earned() -> None:
    scheme = definition(benefit=TEN_PERCENT, total_budget="45")
    two_lines = order(line("A", 10, "40.00"), line("B", 10, "20.00"))  # earns 40.00 + 20.00
    result = only(allocate_budget(scheme, earned(scheme, two_lines)))
    assert [(d.earned_discount, d.discount_value) for d in result.lines] == [
        (Decimal("40.00"), Decimal("30.00")),
        (Decimal("20.00"), Decimal("15.00")),
    ]
    assert (result.discount_value, result.earned_value, result.limited_by) == (
        Decimal("45.00"),
        Decimal("60.00"),
        "total_budget",
    )


def test_free_goods_are_granted_in_whole_units_that_fit() -> None:
    bxgy = {
        "kind": "buy_x_get_y",
        "buy_quantity": 10,
        "free_quantity": 3,
        "repeating": True,
        "free_sku_id": "C",
        "free_unit_cost": "30.00",
    }
    scheme = definition(benefit=bxgy, total_budget="70")
    first, second = allocate_budget(scheme, earned(scheme, forty(1, at=1), forty(2, at=2)))
    # 3 free units cost 90.00; 70.00 buys 2 (60.00); the 10.00 left cannot buy a 30.00 unit.
    assert (first.free_units, first.free_units_cost, first.free_goods[0].earned_units) == (2, Decimal("60.00"), 3)
    assert (second.free_units, second.free_units_cost, second.limited_by) == (0, Decimal("0.00"), "total_budget")


def test_free_goods_priced_in_fractions_of_a_cent_never_round_past_the_cap() -> None:
    bxgy = {
        "kind": "buy_x_get_y",
        "buy_quantity": 10,
        "free_quantity": 1,
        "repeating": False,
        "free_sku_id": "C",
        "free_unit_cost": "30.0099",
    }
    # One free unit costs 30.0099, i.e. 30.01 once rounded: a 30.0099 budget cannot pay for it.
    scheme = definition(benefit=bxgy, total_budget="30.0099")
    (result,) = allocate_budget(scheme, earned(scheme, forty(1)))
    assert (result.free_units, result.value, result.earned_value) == (0, Decimal("0.00"), Decimal("30.01"))


def test_a_late_order_takes_budget_from_a_later_one_and_the_change_is_visible() -> None:
    scheme = definition(benefit=TEN_PERCENT, total_budget="100")
    before = allocate_budget(scheme, earned(scheme, forty(1, at=1), forty(3, at=3)))
    after = allocate_budget(scheme, [*before, *earned(scheme, forty(2, at=2))])
    assert grants(before) == [("ORD-1", Decimal("40.00"), None), ("ORD-3", Decimal("40.00"), None)]
    assert grants(after) == [
        ("ORD-1", Decimal("40.00"), None),
        ("ORD-2", Decimal("40.00"), None),
        ("ORD-3", Decimal("20.00"), "total_budget"),  # the consumer emits a correction: 40.00 -> 20.00
    ]


def test_evaluate_grants_within_the_ledger_of_earlier_orders() -> None:
    scheme = definition(benefit=TEN_PERCENT, total_budget="100", per_outlet_budget="70")
    state = SchemesState.of(scheme)
    ledger = BudgetLedger()
    results = []
    for o in (forty(1, "O1", at=1), forty(2, "O1", at=2), forty(3, "O2", at=3), forty(4, "O2", at=4)):
        benefit = only(evaluate(o, state, ledger))
        ledger = ledger.record(benefit)
        results.append(benefit)
    assert grants(results) == [
        ("ORD-1", Decimal("40.00"), None),
        ("ORD-2", Decimal("30.00"), "per_outlet_budget"),
        ("ORD-3", Decimal("30.00"), "total_budget"),
        ("ORD-4", Decimal("0.00"), "total_budget"),
    ]


def test_a_scheme_with_its_budget_spent_keeps_its_rank_in_stacking() -> None:
    spent_exclusive = definition("SCH-A", benefit=TEN_PERCENT, priority=1, exclusive=True, total_budget="0")
    combinable = definition("SCH-B", benefit=TEN_PERCENT, priority=2)
    result = only(evaluate(forty(1), SchemesState.of(spent_exclusive, combinable)))
    assert (result.scheme_id, result.value, result.earned_value, result.limited_by) == (
        "SCH-A",
        Decimal("0.00"),
        Decimal("40.00"),
        "total_budget",
    )


def test_budget_caps_come_from_the_latest_recorded_definition() -> None:
    launch = envelope(SchemeLaunched, definition_data(benefit=TEN_PERCENT, total_budget="50"), number=1, occurred_at=T0)
    raise_budget = envelope(
        SchemeAmended,
        definition_data(benefit=TEN_PERCENT, total_budget="100") | {"effective_from": day(20).isoformat()},
        number=2,
        occurred_at=day(3),
    )
    state = SchemesState.from_events([raise_budget, launch])
    caps = state.schemes["SCH-1"].budget_definition
    assert caps is not None
    assert caps.total_budget == Decimal("100")
    first = only(evaluate(forty(1, at=1), state))
    second = only(evaluate(forty(2, at=2), state, BudgetLedger().record(first)))
    assert (first.value, second.value) == (Decimal("40.00"), Decimal("40.00"))


def test_duplicates_count_once_and_conflicts_are_refused() -> None:
    scheme = definition(benefit=TEN_PERCENT, total_budget="60")
    one, two = earned(scheme, forty(1, at=1), forty(2, at=2))
    assert allocate_budget(scheme, [two, one, two, one]) == allocate_budget(scheme, [one, two])
    reallocated = allocate_budget(scheme, allocate_budget(scheme, [one, two]))
    assert grants(reallocated) == [("ORD-1", Decimal("40.00"), None), ("ORD-2", Decimal("20.00"), "total_budget")]
    different = earned(scheme, order(line("A", 1, "40.00"), number=1))[0]
    with pytest.raises(ValueError, match="two different benefits"):
        allocate_budget(scheme, [one, different])
    with pytest.raises(ValueError, match="allocated against SCH-OTHER"):
        allocate_budget(definition("SCH-OTHER"), [one])


# --- properties -------------------------------------------------------------------------------------------

BENEFITS: dict[str, dict[str, Any]] = {
    "percent": {"kind": "percent_discount", "percent": "12.5", "min_quantity": 2},
    "flat_unit": {"kind": "flat_discount", "amount": "1.75", "per": "unit"},
    "flat_order": {"kind": "flat_discount", "amount": "33.33", "per": "order"},
    "quantity_slabs": {
        "kind": "quantity_slabs",
        "slabs": [{"min_quantity": 5, "percent": "3"}, {"min_quantity": 15, "percent": "7.5"}],
    },
    "value_slabs": {
        "kind": "order_value_slabs",
        "slabs": [{"min_value": "50", "percent": "2"}, {"min_value": "400", "percent": "6"}],
    },
    "same_sku_free": {"kind": "buy_x_get_y", "buy_quantity": 4, "free_quantity": 1, "repeating": True},
    "other_sku_free": {
        "kind": "buy_x_get_y",
        "buy_quantity": 3,
        "free_quantity": 2,
        "repeating": False,
        "free_sku_id": "C",
        "free_unit_cost": "9.9951",  # fractions of a cent: rounding must not breach caps
    },
}
DISCOUNT_KINDS = {"percent", "flat_unit", "flat_order", "quantity_slabs", "value_slabs"}

# Drawn as integers and decoded: hypothesis generates a few integers much faster than nested tuples or
# st.decimals, and these properties must stay fast.
amounts = st.integers(min_value=0, max_value=4_000_000).map(lambda n: Decimal(n).scaleb(-4))


def decode_line(code: int) -> OrderLineContext:
    """SKU A, B or C (C does not qualify, and is the free SKU of one scheme), 1-25 units, 0.00-60.00 each."""
    code, sku = divmod(code, 3)
    cents, units = divmod(code, 25)
    return OrderLineContext("ABC"[sku], units + 1, Decimal(cents).scaleb(-2))


order_specs = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=2**64),  # event id: ties on time are broken by it
        st.sampled_from(["O1", "O2", "O3"]),
        st.integers(min_value=0, max_value=9),  # half-days: few values, so event times often tie
        st.lists(st.integers(min_value=0, max_value=3 * 25 * 6_001 - 1), min_size=1, max_size=2),
    ),
    max_size=10,
    unique_by=lambda spec: spec[0],
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, SchemeDefinition, list[OrderContext]]:
    kind = draw(st.sampled_from(sorted(BENEFITS)))
    scheme = definition(
        benefit=BENEFITS[kind],
        total_budget=draw(st.none() | amounts),
        per_outlet_budget=draw(st.none() | amounts),
        applies_to={"sku_ids": ["A", "B"]},
    )
    orders = [
        order(
            *(decode_line(code) for code in line_codes),
            number=number,
            outlet_id=outlet_id,
            occurred_at=day(half_days / 2),
        )
        for number, outlet_id, half_days, line_codes in draw(order_specs)
    ]
    return kind, scheme, orders


def benefits_of(scheme: SchemeDefinition, orders: list[OrderContext]) -> list[SchemeBenefit]:
    state = SchemesState.of(scheme)
    return [benefit for o in orders for benefit in evaluate(o, state)]


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(scenarios())
def test_allocation_never_exceeds_a_cap(scenario: tuple[str, SchemeDefinition, list[OrderContext]]) -> None:
    kind, scheme, orders = scenario
    allocated = allocate_budget(scheme, benefits_of(scheme, orders))
    if scheme.total_budget is not None:
        assert sum(b.value for b in allocated) <= scheme.total_budget
    if scheme.per_outlet_budget is not None:
        for outlet in ("O1", "O2", "O3"):
            assert sum(b.value for b in allocated if b.outlet_id == outlet) <= scheme.per_outlet_budget
    for benefit in allocated:
        assert 0 <= benefit.value <= benefit.earned_value
        assert all(0 <= g.units <= g.earned_units for g in benefit.free_goods)
        assert all(0 <= d.discount_value <= d.earned_discount for d in benefit.lines)
        assert (benefit.limited_by is None) == (benefit.value == benefit.earned_value)
    if kind in DISCOUNT_KINDS and scheme.total_budget is not None and scheme.per_outlet_budget is None:
        # Discounts are divisible, so a total cap is used up exactly: nothing is left unspent while earned.
        earned_total = sum(b.earned_value for b in allocated)
        assert sum(b.value for b in allocated) == min(
            earned_total, scheme.total_budget.quantize(Decimal("0.01"), ROUND_DOWN)
        )


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_allocation_ignores_supply_order_and_duplicates(
    scenario: tuple[str, SchemeDefinition, list[OrderContext]], rng: random.Random
) -> None:
    _, scheme, orders = scenario
    benefits = benefits_of(scheme, orders)
    supplied = benefits + rng.sample(benefits, k=len(benefits) // 2)
    rng.shuffle(supplied)
    expected = allocate_budget(scheme, benefits)
    assert allocate_budget(scheme, supplied) == expected
    assert [(b.occurred_at, b.order_event_id) for b in expected] == sorted(
        (b.occurred_at, b.order_event_id) for b in benefits
    )


@PROPERTY_SETTINGS
@given(scenarios())
def test_evaluation_is_deterministic_and_agrees_with_allocation(
    scenario: tuple[str, SchemeDefinition, list[OrderContext]],
) -> None:
    _, scheme, orders = scenario
    state = SchemesState.of(scheme)
    in_event_time = sorted(orders, key=lambda o: (o.occurred_at, o.event_id))
    ledger = BudgetLedger()
    sequential = []
    for o in in_event_time:
        first = evaluate(o, state, ledger)
        assert evaluate(o, SchemesState.of(scheme), ledger) == first
        for benefit in first:
            ledger = ledger.record(benefit)
        sequential.extend(first)
    assert sequential == allocate_budget(scheme, benefits_of(scheme, orders))


def test_property_scenarios_reach_every_benefit_kind() -> None:
    # Guards the generator: a typo in BENEFITS would otherwise quietly shrink what the properties cover.
    assert {definition(benefit=b).benefit.kind for b in BENEFITS.values()} == {
        "percent_discount",
        "flat_discount",
        "quantity_slabs",
        "order_value_slabs",
        "buy_x_get_y",
    }
