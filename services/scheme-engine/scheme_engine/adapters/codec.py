"""SchemeBenefit to and from JSON, so earned benefits can be stored and re-allocated later."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from scheme_engine.domain import FreeGoods, LineBenefit, SchemeBenefit


def dump_benefit(benefit: SchemeBenefit) -> dict[str, Any]:
    """A jsonb value (the pool's codec encodes it); decimals as strings, as a float would lose cents."""
    return {
        "scheme_id": benefit.scheme_id,
        "order_event_id": str(benefit.order_event_id),
        "order_id": benefit.order_id,
        "occurred_at": benefit.occurred_at.isoformat(),
        "outlet_id": benefit.outlet_id,
        "distributor_id": benefit.distributor_id,
        "qualifying_units": benefit.qualifying_units,
        "qualifying_value": str(benefit.qualifying_value),
        "lines": [
            [line.line_index, line.sku_id, line.quantity, str(line.gross_value), str(line.earned_discount)]
            for line in benefit.lines
        ],
        "free_goods": [[goods.sku_id, str(goods.unit_cost), goods.earned_units] for goods in benefit.free_goods],
    }


def load_benefit(data: dict[str, Any]) -> SchemeBenefit:
    """The benefit as earned (granted in full; allocate_budget decides what is really granted)."""
    return SchemeBenefit(
        scheme_id=data["scheme_id"],
        order_event_id=UUID(data["order_event_id"]),
        order_id=data["order_id"],
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        outlet_id=data["outlet_id"],
        distributor_id=data["distributor_id"],
        qualifying_units=data["qualifying_units"],
        qualifying_value=Decimal(data["qualifying_value"]),
        lines=tuple(
            LineBenefit(index, sku, quantity, Decimal(gross), Decimal(earned), Decimal(earned))
            for index, sku, quantity, gross, earned in data["lines"]
        ),
        free_goods=tuple(FreeGoods(sku, Decimal(cost), units, units) for sku, cost, units in data["free_goods"]),
    )
