"""The scheme engine's pure domain: scheme state, evaluation of orders, budget allocation and claims.

No I/O and no framework imports: the Kafka consumer feeds it events and reference data and stores what it
returns. Each module's docstring states its rule: history.py (which definition judges an order),
benefits.py (what a rule gives), evaluation.py (stacking), budget.py (who gets the last of a budget),
claims.py (claim assessment), money.py (rounding), grants.py (which grants changed), returns.py (what a
retailer return takes back), masters.py (which masters changed), events.py (the derived events).
"""

from scheme_engine.domain.budget import BudgetLedger, allocate_budget, grant, headroom
from scheme_engine.domain.claims import (
    Claim,
    ClaimAssessment,
    ClaimLine,
    ClaimLineAssessment,
    assess_claim,
)
from scheme_engine.domain.evaluation import earned_benefits, evaluate, stack
from scheme_engine.domain.history import SchemeEvent, SchemeHistory, SchemesState, SchemeVersion
from scheme_engine.domain.money import round_money
from scheme_engine.domain.order import OrderContext, OrderLineContext, OutletProfile
from scheme_engine.domain.results import BudgetLimit, FreeGoods, LineBenefit, SchemeBenefit, event_time_key
from sellthrough_contracts.schemes import ClaimReason

__all__ = [
    "BudgetLedger",
    "BudgetLimit",
    "Claim",
    "ClaimAssessment",
    "ClaimLine",
    "ClaimLineAssessment",
    "ClaimReason",
    "FreeGoods",
    "LineBenefit",
    "OrderContext",
    "OrderLineContext",
    "OutletProfile",
    "SchemeBenefit",
    "SchemeEvent",
    "SchemeHistory",
    "SchemeVersion",
    "SchemesState",
    "allocate_budget",
    "assess_claim",
    "earned_benefits",
    "evaluate",
    "event_time_key",
    "grant",
    "headroom",
    "round_money",
    "stack",
]
