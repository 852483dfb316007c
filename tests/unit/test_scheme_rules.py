"""Scheme rules, table-driven: benefits, slab edges, buy-X-get-Y, targeting, validity and stacking.

Expected amounts are worked out by hand in the tables (comments show the sums). The factories at the top
are shared with the other test_scheme_* modules.
"""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from scheme_engine.domain import (
    OrderContext,
    OrderLineContext,
    OutletProfile,
    SchemeBenefit,
    SchemeHistory,
    SchemesState,
    evaluate,
)
from sellthrough_contracts.schemes import (
    SchemeAmended,
    SchemeDefinition,
    SchemeEnded,
    SchemeLaunched,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
GROCERY_A = OutletProfile(zone_id="Z1", region_id="R1", channel="grocery", outlet_class="A")


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def definition(scheme_id: str = "SCH-1", **fields: Any) -> SchemeDefinition:
    data: dict[str, Any] = {
        "scheme_id": scheme_id,
        "name": f"Scheme {scheme_id}",
        "valid_from": T0,
        "valid_to": day(30),
        "benefit": {"kind": "percent_discount", "percent": "10"},
    }
    return SchemeDefinition.model_validate(data | fields)


def line(sku_id: str, quantity: int, unit_price: str, brand: str | None = "Sunrise") -> OrderLineContext:
    return OrderLineContext(sku_id, quantity, Decimal(unit_price), brand)


def order(
    *lines: OrderLineContext,
    number: int = 1,
    outlet_id: str = "O1",
    distributor_id: str = "D1",
    occurred_at: datetime | None = None,
    outlet: OutletProfile = GROCERY_A,
) -> OrderContext:
    return OrderContext(
        event_id=uuid.UUID(int=number),
        order_id=f"ORD-{number}",
        occurred_at=occurred_at or day(1),
        outlet_id=outlet_id,
        distributor_id=distributor_id,
        lines=lines,
        outlet=outlet,
    )


def only(benefits: list[SchemeBenefit]) -> SchemeBenefit:
    assert len(benefits) == 1, benefits
    return benefits[0]


def envelope(cls: type[Any], payload: dict[str, Any], *, number: int, occurred_at: datetime) -> Any:
    return cls.model_validate(
        {
            "event_id": str(uuid.UUID(int=number)),
            "occurred_at": occurred_at.isoformat(),
            "source": "admin-console",
            "actor": "ADMIN-1",
            "payload": payload,
        }
    )


def definition_data(scheme_id: str = "SCH-1", **fields: Any) -> dict[str, Any]:
    return definition(scheme_id, **fields).model_dump(mode="json")


# --- percent and flat discounts ------------------------------------------------------------------------

PERCENT = {"kind": "percent_discount", "percent": "10"}


@pytest.mark.parametrize(
    ("benefit", "lines", "expected_discount", "expected_units"),
    [
        pytest.param(PERCENT, [line("A", 12, "45.00")], "54.00", 12, id="10pct_of_12x45"),
        pytest.param(
            PERCENT | {"min_quantity": 12}, [line("A", 12, "45.00")], "54.00", 12, id="min_quantity_exactly_reached"
        ),
        pytest.param(PERCENT | {"min_quantity": 12}, [line("A", 11, "45.00")], None, None, id="min_quantity_one_below"),
        pytest.param(
            PERCENT | {"min_quantity": 10},
            [line("A", 6, "45.00"), line("B", 4, "10.00")],
            "31.00",  # 27.00 + 4.00: the minimum counts units over all qualifying lines
            10,
            id="min_quantity_summed_over_lines",
        ),
        pytest.param(PERCENT, [line("A", 1, "0.25")], "0.03", 1, id="half_up_rounding_0.025_to_0.03"),
        pytest.param(
            {"kind": "percent_discount", "percent": "5"}, [line("A", 1, "10.05")], "0.50", 1, id="0.5025_rounds_down"
        ),
        pytest.param(
            {"kind": "percent_discount", "percent": "100"}, [line("A", 3, "7.25")], "21.75", 3, id="100pct_is_free"
        ),
        pytest.param(
            {"kind": "flat_discount", "amount": "2.00", "per": "unit"},
            [line("A", 12, "45.00")],
            "24.00",
            12,
            id="flat_per_unit",
        ),
        pytest.param(
            {"kind": "flat_discount", "amount": "50.00", "per": "unit"},
            [line("A", 2, "45.00")],
            "90.00",
            2,
            id="flat_per_unit_capped_at_line_value",
        ),
        pytest.param(
            {"kind": "flat_discount", "amount": "2.00", "per": "unit", "min_quantity": 12},
            [line("A", 11, "45.00")],
            None,
            None,
            id="flat_per_unit_min_quantity_one_below",
        ),
        pytest.param(
            {"kind": "flat_discount", "amount": "30.00", "per": "order"},
            [line("A", 12, "45.00"), line("B", 6, "10.00")],
            "30.00",
            18,
            id="flat_per_order",
        ),
        pytest.param(
            {"kind": "flat_discount", "amount": "100.00", "per": "order"},
            [line("A", 1, "45.00")],
            "45.00",
            1,
            id="flat_per_order_capped_at_order_value",
        ),
    ],
)
def test_discount_benefits(
    benefit: dict[str, Any], lines: list[OrderLineContext], expected_discount: str | None, expected_units: int | None
) -> None:
    benefits = evaluate(order(*lines), SchemesState.of(definition(benefit=benefit)))
    if expected_discount is None:
        assert benefits == []
        return
    result = only(benefits)
    assert result.discount_value == Decimal(expected_discount)
    assert result.qualifying_units == expected_units
    assert (result.free_units, result.free_units_cost, result.limited_by) == (0, Decimal("0"), None)


FLAT_ORDER = {"kind": "flat_discount", "per": "order"}


@pytest.mark.parametrize(
    ("amount", "prices", "expected_lines"),
    [
        pytest.param("30.00", ["540.00", "60.00"], ["27.00", "3.00"], id="in_proportion_to_value"),
        pytest.param("10.00", ["10.00", "10.00", "10.00"], ["3.34", "3.33", "3.33"], id="leftover_cent_to_first_line"),
        pytest.param("0.05", ["1.00", "3.00"], ["0.01", "0.04"], id="largest_fraction_gets_the_cent"),
    ],
)
def test_a_per_order_flat_discount_is_spread_over_lines_and_adds_up(
    amount: str, prices: list[str], expected_lines: list[str]
) -> None:
    # 0.05 over 1:3 is 1.25 and 3.75 cents: floors 1 and 3, the leftover cent goes to the 0.75 fraction.
    lines = [line(f"S{i}", 1, price) for i, price in enumerate(prices)]
    result = only(evaluate(order(*lines), SchemesState.of(definition(benefit=FLAT_ORDER | {"amount": amount}))))
    assert [detail.discount_value for detail in result.lines] == [Decimal(e) for e in expected_lines]
    assert result.discount_value == Decimal(amount)


# --- slabs -------------------------------------------------------------------------------------------------

QUANTITY_SLABS = {
    "kind": "quantity_slabs",
    "slabs": [
        {"min_quantity": 10, "percent": "2"},
        {"min_quantity": 20, "percent": "5"},
        {"min_quantity": 50, "percent": "8"},
    ],
}


@pytest.mark.parametrize(
    ("units", "expected_discount"),
    [
        pytest.param(9, None, id="one_below_first_slab"),
        pytest.param(10, "2.00", id="exactly_first_slab"),  # 2% of 100
        pytest.param(11, "2.20", id="one_above_first_slab"),  # 2% of 110
        pytest.param(19, "3.80", id="one_below_second_slab"),  # 2% of 190
        pytest.param(20, "10.00", id="exactly_second_slab"),  # 5% of 200
        pytest.param(21, "10.50", id="one_above_second_slab_tier_not_progressive"),  # 5% of all 210
        pytest.param(49, "24.50", id="one_below_highest_slab"),  # 5% of 490
        pytest.param(50, "40.00", id="exactly_highest_slab"),  # 8% of 500
        pytest.param(51, "40.80", id="one_above_highest_slab"),  # 8% of 510
        pytest.param(500, "400.00", id="far_above_highest_slab"),  # 8% of 5000
    ],
)
def test_quantity_slabs_give_the_highest_slab_reached_on_every_unit(units: int, expected_discount: str | None) -> None:
    benefits = evaluate(order(line("A", units, "10.00")), SchemesState.of(definition(benefit=QUANTITY_SLABS)))
    assert [b.discount_value for b in benefits] == ([Decimal(expected_discount)] if expected_discount else [])


VALUE_SLABS = {
    "kind": "order_value_slabs",
    "slabs": [{"min_value": "1000", "percent": "1"}, {"min_value": "5000", "percent": "3"}],
}


@pytest.mark.parametrize(
    ("lines", "expected_discount"),
    [
        pytest.param([line("A", 1, "999.99")], None, id="one_cent_below_first_slab"),
        pytest.param([line("A", 1, "1000.00")], "10.00", id="exactly_first_slab"),
        pytest.param([line("A", 1, "1000.01")], "10.00", id="one_cent_above_first_slab"),  # 10.0001
        pytest.param([line("A", 1, "4999.99")], "50.00", id="one_cent_below_highest_slab"),  # 49.9999
        pytest.param([line("A", 1, "5000.00")], "150.00", id="exactly_highest_slab"),
        pytest.param([line("A", 1, "5000.01")], "150.00", id="one_cent_above_highest_slab"),  # 150.0003
        pytest.param([line("A", 4, "5000.00")], "600.00", id="far_above_highest_slab"),
        pytest.param([line("A", 10, "60.00"), line("B", 8, "50.00")], "10.00", id="value_summed_over_lines"),
        pytest.param(
            [line("A", 1, "900.00"), line("X", 1, "500.00", brand="Other")],
            None,
            id="non_qualifying_lines_do_not_count",
        ),
    ],
)
def test_order_value_slabs(lines: list[OrderLineContext], expected_discount: str | None) -> None:
    scheme = definition(benefit=VALUE_SLABS, applies_to={"brands": ["Sunrise"]})
    benefits = evaluate(order(*lines), SchemesState.of(scheme))
    assert [b.discount_value for b in benefits] == ([Decimal(expected_discount)] if expected_discount else [])


# --- buy X get Y -------------------------------------------------------------------------------------------


def bxgy(
    buy: int, free: int, *, repeating: bool, free_sku_id: str | None = None, cost: str | None = None
) -> dict[str, Any]:
    benefit: dict[str, Any] = {
        "kind": "buy_x_get_y",
        "buy_quantity": buy,
        "free_quantity": free,
        "repeating": repeating,
    }
    if free_sku_id is not None:
        benefit |= {"free_sku_id": free_sku_id, "free_unit_cost": cost}
    return benefit


@pytest.mark.parametrize(
    ("benefit", "lines", "expected_free_goods"),
    [
        pytest.param(
            bxgy(10, 1, repeating=True), [line("A", 25, "45.00")], [("A", 2, "90.00")], id="same_sku_repeating"
        ),
        pytest.param(bxgy(10, 1, repeating=False), [line("A", 25, "45.00")], [("A", 1, "45.00")], id="same_sku_once"),
        pytest.param(bxgy(10, 1, repeating=True), [line("A", 10, "45.00")], [("A", 1, "45.00")], id="exactly_x"),
        pytest.param(bxgy(10, 1, repeating=True), [line("A", 9, "45.00")], [], id="one_below_x"),
        pytest.param(bxgy(10, 3, repeating=True), [line("A", 20, "2.50")], [("A", 6, "15.00")], id="y_per_set"),
        pytest.param(
            bxgy(10, 1, repeating=True),
            [line("A", 12, "45.00"), line("B", 8, "20.00")],
            [("A", 1, "45.00")],  # pooled, 20 units would give 2; per SKU B's 8 do not reach 10
            id="same_sku_counts_each_sku_on_its_own",
        ),
        pytest.param(
            bxgy(10, 1, repeating=True),
            [line("A", 5, "45.00"), line("A", 5, "40.00")],
            [("A", 1, "40.00")],
            id="same_sku_on_two_lines_valued_at_lowest_price",
        ),
        pytest.param(
            bxgy(6, 1, repeating=True, free_sku_id="C", cost="25.00"),
            [line("A", 6, "45.00"), line("C", 2, "30.00", brand="Other")],
            [("C", 1, "30.00")],
            id="other_sku_valued_at_its_price_on_the_order",
        ),
        pytest.param(
            bxgy(6, 1, repeating=True, free_sku_id="C", cost="25.00"),
            [line("A", 6, "45.00")],
            [("C", 1, "25.00")],
            id="other_sku_not_on_order_valued_at_free_unit_cost",
        ),
        pytest.param(
            bxgy(6, 1, repeating=True, free_sku_id="C", cost="25.00"),
            [line("A", 4, "45.00"), line("B", 2, "20.00")],
            [("C", 1, "25.00")],
            id="other_sku_pools_qualifying_units",
        ),
        pytest.param(
            bxgy(6, 2, repeating=True, free_sku_id="C", cost="25.00"),
            [line("A", 13, "45.00")],
            [("C", 4, "100.00")],
            id="other_sku_repeating",
        ),
        pytest.param(
            bxgy(6, 2, repeating=False, free_sku_id="C", cost="25.00"),
            [line("A", 13, "45.00")],
            [("C", 2, "50.00")],
            id="other_sku_once",
        ),
    ],
)
def test_buy_x_get_y(
    benefit: dict[str, Any], lines: list[OrderLineContext], expected_free_goods: list[tuple[str, int, str]]
) -> None:
    scheme = definition(benefit=benefit, applies_to={"brands": ["Sunrise"]})
    benefits = evaluate(order(*lines), SchemesState.of(scheme))
    if not expected_free_goods:
        assert benefits == []
        return
    result = only(benefits)
    assert [(g.sku_id, g.units, g.cost) for g in result.free_goods] == [
        (sku, units, Decimal(cost)) for sku, units, cost in expected_free_goods
    ]
    assert result.free_units == sum(units for _, units, _ in expected_free_goods)
    assert result.free_units_cost == sum(Decimal(cost) for _, _, cost in expected_free_goods)
    assert result.discount_value == 0


# --- what it applies to and who it targets --------------------------------------------------------------

MIXED_LINES = [
    line("A", 1, "1.00", brand="Sunrise"),
    line("B", 2, "1.00", brand="Koko"),
    line("C", 4, "1.00", brand="Koko"),
    line("D", 8, "1.00", brand=None),
]


@pytest.mark.parametrize(
    ("applies_to", "expected_units"),
    [
        pytest.param({}, 15, id="empty_means_every_sku"),
        pytest.param({"sku_ids": ["A", "D"]}, 9, id="by_sku"),
        pytest.param({"brands": ["Koko"]}, 6, id="by_brand"),
        pytest.param({"sku_ids": ["A"], "brands": ["Koko"]}, 7, id="sku_or_brand"),
        pytest.param({"sku_ids": ["B"], "brands": ["Koko"]}, 6, id="matching_both_counts_once"),
        pytest.param({"brands": ["Nothing"]}, None, id="no_qualifying_line"),
    ],
)
def test_which_lines_qualify(applies_to: dict[str, list[str]], expected_units: int | None) -> None:
    benefits = evaluate(order(*MIXED_LINES), SchemesState.of(definition(applies_to=applies_to)))
    assert [b.qualifying_units for b in benefits] == ([expected_units] if expected_units else [])


@pytest.mark.parametrize(
    ("targeting", "outlet", "applies"),
    [
        pytest.param({}, GROCERY_A, True, id="empty_targets_everyone"),
        pytest.param({"zone_ids": ["Z1"]}, GROCERY_A, True, id="zone_match"),
        pytest.param({"zone_ids": ["Z2"]}, GROCERY_A, False, id="zone_mismatch"),
        pytest.param({"region_ids": ["R1"]}, GROCERY_A, True, id="region_match"),
        pytest.param({"region_ids": ["R2"]}, GROCERY_A, False, id="region_mismatch"),
        pytest.param({"distributor_ids": ["D1"]}, GROCERY_A, True, id="distributor_match"),
        pytest.param({"distributor_ids": ["D2"]}, GROCERY_A, False, id="distributor_mismatch"),
        pytest.param({"channels": ["grocery"]}, GROCERY_A, True, id="channel_match"),
        pytest.param({"channels": ["chemist"]}, GROCERY_A, False, id="channel_mismatch"),
        pytest.param({"outlet_classes": ["A"]}, GROCERY_A, True, id="class_match"),
        pytest.param({"outlet_classes": ["B"]}, GROCERY_A, False, id="class_mismatch"),
        pytest.param({"outlet_ids": ["O1"]}, GROCERY_A, True, id="outlet_match"),
        pytest.param({"outlet_ids": ["O2"]}, GROCERY_A, False, id="outlet_mismatch"),
        pytest.param({"zone_ids": ["Z2", "Z1"]}, GROCERY_A, True, id="or_within_a_dimension"),
        pytest.param({"zone_ids": ["Z1"], "channels": ["grocery"]}, GROCERY_A, True, id="and_across_all_match"),
        pytest.param({"zone_ids": ["Z1"], "channels": ["chemist"]}, GROCERY_A, False, id="and_across_one_fails"),
        pytest.param(
            {
                "zone_ids": ["Z1"],
                "region_ids": ["R1"],
                "distributor_ids": ["D1"],
                "channels": ["grocery"],
                "outlet_classes": ["A", "B"],
                "outlet_ids": ["O1", "O9"],
            },
            GROCERY_A,
            True,
            id="all_six_dimensions_match",
        ),
        pytest.param({"zone_ids": ["Z1"]}, OutletProfile(), False, id="unknown_zone_never_matches_a_named_zone"),
        pytest.param({"channels": ["grocery"]}, OutletProfile(), False, id="unknown_channel_never_matches"),
        pytest.param({}, OutletProfile(), True, id="unknown_attributes_fine_without_restriction"),
    ],
)
def test_targeting(targeting: dict[str, list[str]], outlet: OutletProfile, applies: bool) -> None:
    benefits = evaluate(order(line("A", 10, "10.00"), outlet=outlet), SchemesState.of(definition(targeting=targeting)))
    assert [b.discount_value for b in benefits] == ([Decimal("10.00")] if applies else [])


# --- validity, amendments, early end ----------------------------------------------------------------------

IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("occurred_at", "applies"),
    [
        pytest.param(T0, True, id="exactly_valid_from_included"),
        pytest.param(T0 - MICROSECOND, False, id="just_before_valid_from"),
        pytest.param(day(10) - MICROSECOND, True, id="just_before_valid_to"),
        pytest.param(day(10), False, id="exactly_valid_to_excluded"),
        pytest.param(day(10).astimezone(IST), False, id="valid_to_in_another_time_zone_excluded"),
        pytest.param((T0 - MICROSECOND).astimezone(IST), False, id="before_valid_from_in_another_time_zone"),
    ],
)
def test_validity_window(occurred_at: datetime, applies: bool) -> None:
    state = SchemesState.of(definition(valid_to=day(10)))
    benefits = evaluate(order(line("A", 1, "10.00"), occurred_at=occurred_at), state)
    assert [b.discount_value for b in benefits] == ([Decimal("1.00")] if applies else [])


LAUNCH = envelope(SchemeLaunched, definition_data(), number=101, occurred_at=T0 - timedelta(days=7))
AMEND_TO_20 = envelope(
    SchemeAmended,
    definition_data(benefit={"kind": "percent_discount", "percent": "20"}) | {"effective_from": day(5).isoformat()},
    number=102,
    occurred_at=day(4),
)
AMEND_TO_30_SAME_INSTANT = envelope(
    SchemeAmended,
    definition_data(benefit={"kind": "percent_discount", "percent": "30"}) | {"effective_from": day(5).isoformat()},
    number=103,
    occurred_at=day(4) + timedelta(hours=1),
)
AMEND_SHORTEN_TO_DAY_8 = envelope(
    SchemeAmended,
    definition_data(valid_to=day(8).isoformat()) | {"effective_from": day(6).isoformat()},
    number=104,
    occurred_at=day(6),
)
END_DAY_3 = envelope(
    SchemeEnded, {"scheme_id": "SCH-1", "ended_at": day(3).isoformat()}, number=105, occurred_at=day(2)
)
END_DAY_12_CORRECTION = envelope(
    SchemeEnded,
    {"scheme_id": "SCH-1", "ended_at": day(12).isoformat()},
    number=106,
    occurred_at=day(2) + timedelta(hours=2),
)


@pytest.mark.parametrize(
    ("events", "occurred_at", "expected_discount"),
    [
        pytest.param([LAUNCH], day(1), "10.00", id="launched"),
        pytest.param([LAUNCH, AMEND_TO_20], day(5) - MICROSECOND, "10.00", id="just_before_amendment_effective"),
        pytest.param([LAUNCH, AMEND_TO_20], day(5), "20.00", id="exactly_at_amendment_effective"),
        pytest.param([AMEND_TO_20, LAUNCH], day(5), "20.00", id="amendment_applied_before_launch_same_state"),
        pytest.param([AMEND_TO_20, LAUNCH], day(2), "10.00", id="late_order_judged_by_version_at_its_time"),
        pytest.param(
            [LAUNCH, AMEND_TO_30_SAME_INSTANT, AMEND_TO_20], day(6), "30.00", id="same_effective_later_recorded_wins"
        ),
        pytest.param([LAUNCH, AMEND_SHORTEN_TO_DAY_8], day(8) - MICROSECOND, "10.00", id="amended_window_still_open"),
        pytest.param([LAUNCH, AMEND_SHORTEN_TO_DAY_8], day(8), None, id="amended_window_closed"),
        pytest.param([LAUNCH, AMEND_SHORTEN_TO_DAY_8], day(5), "10.00", id="before_amendment_original_window"),
        pytest.param([LAUNCH, END_DAY_3], day(3) - MICROSECOND, "10.00", id="just_before_early_end"),
        pytest.param([LAUNCH, END_DAY_3], day(3), None, id="exactly_at_early_end"),
        pytest.param([LAUNCH, END_DAY_3, AMEND_TO_20], day(5), None, id="amendment_does_not_revive_an_ended_scheme"),
        pytest.param([LAUNCH, END_DAY_12_CORRECTION, END_DAY_3], day(5), "10.00", id="later_recorded_end_wins"),
        pytest.param([END_DAY_3], day(1), None, id="end_without_launch_gives_nothing"),
    ],
)
def test_the_version_in_effect_at_event_time_judges_the_order(
    events: list[Any], occurred_at: datetime, expected_discount: str | None
) -> None:
    state = SchemesState.from_events(events)
    benefits = evaluate(order(line("A", 10, "10.00"), occurred_at=occurred_at), state)
    assert [b.discount_value for b in benefits] == ([Decimal(expected_discount)] if expected_discount else [])


def test_applying_scheme_events_twice_or_in_any_order_gives_the_same_state() -> None:
    events = [LAUNCH, AMEND_TO_20, AMEND_TO_30_SAME_INSTANT, END_DAY_12_CORRECTION, END_DAY_3]
    forward = SchemesState.from_events(events)
    assert SchemesState.from_events(list(reversed(events)) + events) == forward
    assert len(forward.schemes["SCH-1"].amendments) == 2


def test_a_history_refuses_another_schemes_event() -> None:
    with pytest.raises(ValueError, match="SCH-1 applied to SCH-2"):
        SchemeHistory("SCH-2").with_event(LAUNCH)


# --- stacking ------------------------------------------------------------------------------------------------


def pct(percent: str, **fields: Any) -> dict[str, Any]:
    return {"benefit": {"kind": "percent_discount", "percent": percent}} | fields


@pytest.mark.parametrize(
    ("schemes", "expected"),
    [
        pytest.param(
            {"SCH-A": pct("10", priority=1), "SCH-B": pct("5", priority=2)},
            [("SCH-A", "10.00"), ("SCH-B", "5.00")],
            id="combinable_schemes_all_apply_in_priority_order",
        ),
        pytest.param(
            {"SCH-A": pct("10", priority=2), "SCH-B": pct("5", priority=1)},
            [("SCH-B", "5.00"), ("SCH-A", "10.00")],
            id="lower_priority_number_ranks_first",
        ),
        pytest.param(
            {"SCH-A": pct("10", priority=1, exclusive=True), "SCH-B": pct("5", priority=2)},
            [("SCH-A", "10.00")],
            id="exclusive_first_applies_alone",
        ),
        pytest.param(
            {
                "SCH-A": pct("10", priority=1),
                "SCH-B": pct("50", priority=2, exclusive=True),
                "SCH-C": pct("5", priority=3),
            },
            [("SCH-A", "10.00"), ("SCH-C", "5.00")],
            id="exclusive_outranked_by_a_combinable_is_skipped",
        ),
        pytest.param(
            {"SCH-B": pct("5", priority=1, exclusive=True), "SCH-A": pct("10", priority=1, exclusive=True)},
            [("SCH-A", "10.00")],
            id="priority_tie_broken_by_scheme_id",
        ),
        pytest.param(
            {"SCH-B": pct("5", priority=1), "SCH-A": pct("10", priority=1)},
            [("SCH-A", "10.00"), ("SCH-B", "5.00")],
            id="combinable_tie_listed_by_scheme_id",
        ),
        pytest.param(
            {
                "SCH-A": {"benefit": PERCENT | {"min_quantity": 11}, "priority": 1, "exclusive": True},
                "SCH-B": pct("5", priority=2),
            },
            [("SCH-B", "5.00")],
            id="exclusive_not_reached_does_not_block",
        ),
        pytest.param(
            {"SCH-A": pct("10", priority=1, targeting={"channels": ["chemist"]}, exclusive=True), "SCH-B": pct("5")},
            [("SCH-B", "5.00")],
            id="exclusive_not_targeted_does_not_block",
        ),
        pytest.param(
            {"SCH-A": pct("60", priority=1), "SCH-B": pct("60", priority=2)},
            [("SCH-A", "60.00"), ("SCH-B", "40.00")],
            id="stacked_discounts_clipped_to_line_value",
        ),
    ],
)
def test_stacking(schemes: dict[str, dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    state = SchemesState.of(*(definition(scheme_id, **fields) for scheme_id, fields in schemes.items()))
    benefits = evaluate(order(line("A", 10, "10.00")), state)
    assert [(b.scheme_id, b.discount_value) for b in benefits] == [(s, Decimal(v)) for s, v in expected]


# --- contracts: definitions refuse nonsense with clear errors --------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"valid_to": T0}, "must be after valid_from", id="empty_window"),
        pytest.param({"valid_to": T0 - timedelta(days=1)}, "must be after valid_from", id="window_backwards"),
        pytest.param({"valid_from": "2026-03-01T00:00:00"}, "timezone", id="naive_valid_from"),
        pytest.param({"benefit": {"kind": "percent_discount", "percent": "0"}}, "greater than 0", id="percent_zero"),
        pytest.param(
            {"benefit": {"kind": "percent_discount", "percent": "100.01"}},
            "less than or equal to 100",
            id="percent_over_100",
        ),
        pytest.param(
            {"benefit": {"kind": "flat_discount", "amount": "0", "per": "unit"}}, "greater than 0", id="flat_zero"
        ),
        pytest.param(
            {"benefit": {"kind": "flat_discount", "amount": "1"}}, "per\n  Field required", id="flat_without_per"
        ),
        pytest.param(
            {
                "benefit": {
                    "kind": "quantity_slabs",
                    "slabs": [{"min_quantity": 20, "percent": "5"}, {"min_quantity": 10, "percent": "2"}],
                }
            },
            "strictly increasing min_quantity: slab 1 (10) is not above slab 0 (20)",
            id="quantity_slabs_unsorted",
        ),
        pytest.param(
            {
                "benefit": {
                    "kind": "quantity_slabs",
                    "slabs": [{"min_quantity": 10, "percent": "2"}, {"min_quantity": 10, "percent": "5"}],
                }
            },
            "strictly increasing min_quantity",
            id="quantity_slabs_overlapping",
        ),
        pytest.param(
            {
                "benefit": {
                    "kind": "quantity_slabs",
                    "slabs": [{"min_quantity": 10, "percent": "5"}, {"min_quantity": 20, "percent": "2"}],
                }
            },
            "must not give a smaller percent",
            id="higher_slab_smaller_percent",
        ),
        pytest.param({"benefit": {"kind": "quantity_slabs", "slabs": []}}, "at least 1 item", id="no_slabs"),
        pytest.param(
            {"benefit": {"kind": "quantity_slabs", "slabs": [{"min_quantity": 0, "percent": "2"}]}},
            "greater than 0",
            id="slab_at_zero_units",
        ),
        pytest.param(
            {
                "benefit": {
                    "kind": "order_value_slabs",
                    "slabs": [{"min_value": "500", "percent": "1"}, {"min_value": "500", "percent": "2"}],
                }
            },
            "strictly increasing min_value",
            id="value_slabs_overlapping",
        ),
        pytest.param({"benefit": bxgy(0, 1, repeating=True)}, "greater than 0", id="buy_zero"),
        pytest.param({"benefit": bxgy(-2, 1, repeating=True)}, "greater than 0", id="buy_negative"),
        pytest.param({"benefit": bxgy(2, 0, repeating=True)}, "greater than 0", id="free_zero"),
        pytest.param(
            {"benefit": {"kind": "buy_x_get_y", "buy_quantity": 2, "free_quantity": 1}},
            "repeating\n  Field required",
            id="repeating_not_said",
        ),
        pytest.param(
            {"benefit": bxgy(2, 1, repeating=True) | {"free_sku_id": "C"}},
            "free_unit_cost is required",
            id="other_sku_without_cost",
        ),
        pytest.param(
            {"benefit": bxgy(2, 1, repeating=True) | {"free_unit_cost": "3"}},
            "free_unit_cost only applies with free_sku_id",
            id="cost_without_other_sku",
        ),
        pytest.param(
            {"benefit": {"kind": "cashback", "percent": "1"}},
            "does not match any of the expected tags",
            id="unknown_kind",
        ),
        pytest.param({"priority": 0}, "greater than or equal to 1", id="priority_zero"),
        pytest.param({"total_budget": "-1"}, "greater than or equal to 0", id="negative_budget"),
        pytest.param({"targeting": {"zone_ids": ["has space"]}}, "should match pattern", id="bad_zone_id"),
        pytest.param(
            {"targeting": {"states": ["X"]}}, "Extra inputs are not permitted", id="unknown_targeting_dimension"
        ),
        pytest.param({"discount": "5"}, "Extra inputs are not permitted", id="unknown_field"),
    ],
)
def test_invalid_definitions_are_refused_clearly(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        definition(**fields)
    assert message in str(error.value)


def test_scheme_events_are_keyed_by_scheme_and_round_trip_through_json() -> None:
    for event in (LAUNCH, AMEND_TO_20, END_DAY_3):
        assert event.partition_key() == "SCH-1"
        assert type(event).model_validate_json(event.model_dump_json()) == event
    assert (LAUNCH.event_type, AMEND_TO_20.event_type, END_DAY_3.event_type) == (
        "SchemeLaunched",
        "SchemeAmended",
        "SchemeEnded",
    )
    assert AMEND_TO_20.payload.effective_from == day(5)


def test_an_amendment_that_could_never_apply_is_refused() -> None:
    with pytest.raises(ValidationError, match="the amendment would never apply"):
        envelope(
            SchemeAmended,
            definition_data(valid_to=day(10).isoformat()) | {"effective_from": day(10).isoformat()},
            number=1,
            occurred_at=day(1),
        )


def test_an_order_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        order(line("A", 1, "1.00"), occurred_at=datetime(2026, 3, 2))
