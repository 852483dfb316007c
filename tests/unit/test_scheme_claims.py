"""Claim assessment: amounts and a reason for every way a claim line can fail."""

from decimal import Decimal
from typing import Any

import pytest

from scheme_engine.domain import (
    BudgetLedger,
    Claim,
    ClaimLine,
    OrderContext,
    OutletProfile,
    SchemeBenefit,
    SchemeHistory,
    SchemesState,
    assess_claim,
    evaluate,
)
from sellthrough_contracts.schemes import SchemeDefinition
from tests.unit.test_scheme_rules import GROCERY_A, T0, day, definition, line, order

CHEMIST = OutletProfile(zone_id="Z1", region_id="R1", channel="chemist", outlet_class="A")


def slab_scheme(**fields: Any) -> SchemeDefinition:
    """5% off once 10 units are bought, for grocery outlets, valid for the first 30 days."""
    defaults: dict[str, Any] = {
        "benefit": {"kind": "quantity_slabs", "slabs": [{"min_quantity": 10, "percent": "5"}]},
        "targeting": {"channels": ["grocery"]},
        "valid_to": day(30),
    }
    return definition("SCH-1", **(defaults | fields))


# An exclusive scheme that wins whenever SKU B is on the order.
RIVAL = definition(
    "SCH-0",
    benefit={"kind": "percent_discount", "percent": "10"},
    priority=1,
    exclusive=True,
    applies_to={"sku_ids": ["B"]},
)

ORDERS = [
    order(line("A", 20, "10.00"), number=1, outlet_id="O1", occurred_at=day(1)),  # earns 10.00
    order(line("A", 10, "10.00"), number=2, outlet_id="O1", occurred_at=day(2)),  # earns 5.00
    order(line("A", 20, "10.00"), number=3, outlet_id="O2", occurred_at=day(1), outlet=CHEMIST),
    order(line("A", 20, "10.00"), number=4, outlet_id="O3", occurred_at=day(-5)),
    order(line("A", 5, "10.00"), number=5, outlet_id="O4", occurred_at=day(3)),
    order(line("A", 20, "10.00"), line("B", 1, "10.00"), number=6, outlet_id="O6", occurred_at=day(4)),
    order(line("A", 20, "10.00"), number=7, outlet_id="O7", distributor_id="D2", occurred_at=day(5)),
]


def captured(scheme: SchemeDefinition, orders: list[OrderContext]) -> list[SchemeBenefit]:
    """What the engine captured for SCH-1 (evaluated one by one, in event time, through the real rules)."""
    state = SchemesState.of(scheme, RIVAL)
    ledger = BudgetLedger()
    benefits = []
    for o in sorted(orders, key=lambda o: (o.occurred_at, o.event_id)):
        for benefit in evaluate(o, state, ledger):
            ledger = ledger.record(benefit)
            if benefit.scheme_id == "SCH-1":
                benefits.append(benefit)
    return benefits


def claim(*lines: tuple[str, ...], amount: str | None = None, **fields: Any) -> Claim:
    claim_lines = tuple(ClaimLine(spec[0], Decimal(spec[1]), spec[2] if len(spec) == 3 else None) for spec in lines)
    total = Decimal(amount) if amount is not None else sum((cl.amount for cl in claim_lines), Decimal("0"))
    data: dict[str, Any] = {
        "claim_id": "CLM-1",
        "scheme_id": "SCH-1",
        "distributor_id": "D1",
        "period_start": T0,
        "period_end": day(30),
        "amount": total,
        "lines": claim_lines,
    }
    return Claim(**(data | fields))


def assess(c: Claim, scheme: SchemeDefinition | None = None) -> Any:
    scheme = scheme or slab_scheme()
    return assess_claim(c, captured(scheme, ORDERS), scheme=SchemeHistory.launched(scheme), orders=ORDERS)


NOT_TARGETED = ("outlet_not_targeted", "claimed_more_than_entitled")


@pytest.mark.parametrize(
    ("lines", "expected_lines", "expected_claim"),
    [
        pytest.param([("O1", "15.00")], [("15.00", "15.00", "0.00", ())], ("15.00", "0.00", ()), id="entitled_in_full"),
        pytest.param(
            [("O1", "10.00", "ORD-1")], [("10.00", "10.00", "0.00", ())], ("10.00", "0.00", ()), id="naming_one_order"
        ),
        pytest.param(
            [("O1", "20.00")],
            [("15.00", "15.00", "5.00", ("claimed_more_than_entitled",))],
            ("15.00", "5.00", ("claimed_more_than_entitled",)),
            id="claimed_more_than_entitled",
        ),
        pytest.param(
            [("O2", "4.00")], [("0", "0", "4.00", NOT_TARGETED)], ("0", "4.00", NOT_TARGETED), id="outlet_not_targeted"
        ),
        pytest.param(
            [("O3", "3.00")],
            [("0", "0", "3.00", ("order_outside_validity", "claimed_more_than_entitled"))],
            ("0", "3.00", ("order_outside_validity", "claimed_more_than_entitled")),
            id="order_outside_validity",
        ),
        pytest.param(
            [("O4", "2.00")],
            [("0", "0", "2.00", ("slab_not_reached", "claimed_more_than_entitled"))],
            ("0", "2.00", ("slab_not_reached", "claimed_more_than_entitled")),
            id="slab_not_reached",
        ),
        pytest.param(
            [("O5", "1.00")],
            [("0", "0", "1.00", ("no_captured_order", "claimed_more_than_entitled"))],
            ("0", "1.00", ("no_captured_order", "claimed_more_than_entitled")),
            id="no_captured_order",
        ),
        pytest.param(
            [("O6", "6.00")],
            [("0", "0", "6.00", ("excluded_by_stacking", "claimed_more_than_entitled"))],
            ("0", "6.00", ("excluded_by_stacking", "claimed_more_than_entitled")),
            id="excluded_by_stacking",
        ),
        pytest.param(
            [("O1", "5.00", "ORD-99")],
            [("0", "0", "5.00", ("no_captured_order", "claimed_more_than_entitled"))],
            ("0", "5.00", ("no_captured_order", "claimed_more_than_entitled")),
            id="named_order_never_captured",
        ),
        pytest.param(
            [("O7", "10.00")],
            [("0", "0", "10.00", ("no_captured_order", "claimed_more_than_entitled"))],
            ("0", "10.00", ("no_captured_order", "claimed_more_than_entitled")),
            id="another_distributors_outlet",
        ),
        pytest.param(
            [("O1", "8.00", "ORD-1"), ("O1", "8.00", "ORD-1")],
            [("10.00", "8.00", "0.00", ()), ("2.00", "2.00", "6.00", ("claimed_more_than_entitled",))],
            ("10.00", "6.00", ("claimed_more_than_entitled",)),
            id="two_lines_cannot_draw_one_benefit_twice",
        ),
        pytest.param(
            [("O1", "15.00"), ("O2", "4.00")],
            [("15.00", "15.00", "0.00", ()), ("0", "0", "4.00", NOT_TARGETED)],
            ("15.00", "4.00", NOT_TARGETED),
            id="good_line_and_bad_line",
        ),
        pytest.param([("O5", "0.00")], [("0", "0", "0.00", ())], ("0", "0.00", ()), id="zero_line_needs_no_reason"),
    ],
)
def test_claim_lines(
    lines: list[tuple[str, ...]],
    expected_lines: list[tuple[str, str, str, tuple[str, ...]]],
    expected_claim: tuple[str, str, tuple[str, ...]],
) -> None:
    assessment = assess(claim(*lines))
    assert [(a.entitled_amount, a.approved_amount, a.over_claim_amount, a.reasons) for a in assessment.lines] == [
        (Decimal(entitled), Decimal(approved), Decimal(over), reasons)
        for entitled, approved, over, reasons in expected_lines
    ]
    approved, over, reasons = expected_claim
    assert (
        assessment.entitled_amount,
        assessment.approved_amount,
        assessment.over_claim_amount,
        assessment.reasons,
    ) == (
        Decimal("15.00"),  # ORD-1 10.00 + ORD-2 5.00: D1's captured benefits in the period
        Decimal(approved),
        Decimal(over),
        reasons,
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"amount": "12.00"}, ("15.00", "12.00", "0.00", ()), id="under_entitlement"),
        pytest.param({"amount": "15.00"}, ("15.00", "15.00", "0.00", ()), id="exactly_entitled"),
        pytest.param(
            {"amount": "20.00"}, ("15.00", "15.00", "5.00", ("claimed_more_than_entitled",)), id="over_entitlement"
        ),
        pytest.param(
            {"amount": "9.00", "period_start": day(1.5)},
            ("5.00", "5.00", "4.00", ("claimed_more_than_entitled",)),  # only ORD-2 (day 2) is in the period
            id="period_counts_only_its_orders",
        ),
        pytest.param(
            {"amount": "9.00", "period_start": day(10), "period_end": day(20)},
            ("0", "0", "9.00", ("order_outside_validity", "claimed_more_than_entitled")),
            id="no_order_in_the_period",
        ),
        pytest.param(
            {"amount": "9.00", "distributor_id": "D3"},
            ("0", "0", "9.00", ("no_captured_order", "claimed_more_than_entitled")),
            id="distributor_without_orders",
        ),
        pytest.param(
            {"amount": "10.00", "distributor_id": "D2"},
            ("10.00", "10.00", "0.00", ()),
            id="other_distributor_own_claim",
        ),
    ],
)
def test_claims_without_lines(fields: dict[str, Any], expected: tuple[str, str, str, tuple[str, ...]]) -> None:
    amount = fields.pop("amount")
    assessment = assess(claim(amount=amount, **fields))
    entitled, approved, over, reasons = expected
    assert (
        assessment.entitled_amount,
        assessment.approved_amount,
        assessment.over_claim_amount,
        assessment.reasons,
        assessment.lines,
    ) == (Decimal(entitled), Decimal(approved), Decimal(over), reasons, ())


def test_a_line_cut_by_the_budget_says_so() -> None:
    # total budget 12.00: ORD-1 gets 10.00, ORD-2 only 2.00 of the 5.00 it earned.
    assessment = assess(claim(("O1", "15.00")), slab_scheme(total_budget="12"))
    (line_assessment,) = assessment.lines
    assert (line_assessment.entitled_amount, line_assessment.approved_amount, line_assessment.reasons) == (
        Decimal("12.00"),
        Decimal("12.00"),
        ("budget_exhausted", "claimed_more_than_entitled"),
    )
    assert (assessment.entitled_amount, assessment.over_claim_amount) == (Decimal("12.00"), Decimal("3.00"))


def test_an_order_in_the_claim_period_but_at_the_schemes_valid_to_is_outside_validity() -> None:
    scheme = slab_scheme(valid_to=day(2))  # ORD-2 at exactly day 2: valid_to is exclusive
    assessment = assess(claim(("O1", "10.00", "ORD-2")), scheme)
    assert assessment.lines[0].reasons == ("order_outside_validity", "claimed_more_than_entitled")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: claim(("O1", "5.00"), amount="6.00"), "add up to the claimed amount", id="lines_do_not_add_up"
        ),
        pytest.param(lambda: claim(amount="1.005"), "whole cents", id="sub_cent_claim"),
        pytest.param(lambda: claim(amount="-1.00"), "non-negative", id="negative_claim"),
        pytest.param(lambda: claim(amount="1.00", period_end=T0), "period_end must be after", id="empty_period"),
        pytest.param(lambda: ClaimLine("O1", Decimal("0.001")), "whole cents", id="sub_cent_line"),
    ],
)
def test_malformed_claims_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_claim_is_assessed_against_its_own_scheme_only() -> None:
    with pytest.raises(ValueError, match="assessed against SCH-0"):
        assess_claim(claim(amount="1.00"), [], scheme=SchemeHistory.launched(RIVAL), orders=[])


def test_the_claimed_outlets_profile_is_what_targeting_uses() -> None:
    # Same order as ORD-3 but from a grocery outlet: it is targeted and earns 10.00, so nothing is refused.
    grocery = order(line("A", 20, "10.00"), number=3, outlet_id="O2", occurred_at=day(1), outlet=GROCERY_A)
    orders = [grocery]
    scheme = slab_scheme()
    result = assess_claim(
        claim(("O2", "10.00")), captured(scheme, orders), scheme=SchemeHistory.launched(scheme), orders=orders
    )
    assert (result.approved_amount, result.reasons) == (Decimal("10.00"), ())
