"""Who a scheme is for (targeting) and which lines it pays on (products), as sets for fast membership."""

from dataclasses import dataclass

from scheme_engine.domain.order import OrderContext, OrderLineContext
from sellthrough_contracts.schemes import SchemeDefinition


@dataclass(frozen=True, slots=True)
class Audience:
    zone_ids: frozenset[str]
    region_ids: frozenset[str]
    distributor_ids: frozenset[str]
    channels: frozenset[str]
    outlet_classes: frozenset[str]
    outlet_ids: frozenset[str]
    sku_ids: frozenset[str]
    brands: frozenset[str]

    @classmethod
    def of(cls, definition: SchemeDefinition) -> "Audience":
        targeting, products = definition.targeting, definition.applies_to
        return cls(
            zone_ids=frozenset(targeting.zone_ids),
            region_ids=frozenset(targeting.region_ids),
            distributor_ids=frozenset(targeting.distributor_ids),
            channels=frozenset(targeting.channels),
            outlet_classes=frozenset(targeting.outlet_classes),
            outlet_ids=frozenset(targeting.outlet_ids),
            sku_ids=frozenset(products.sku_ids),
            brands=frozenset(products.brands),
        )

    def targets(self, order: OrderContext) -> bool:
        """Every dimension that names values must contain the order's; an empty one does not restrict."""
        outlet = order.outlet
        dimensions: tuple[tuple[frozenset[str], str | None], ...] = (
            (self.zone_ids, outlet.zone_id),
            (self.region_ids, outlet.region_id),
            (self.distributor_ids, order.distributor_id),
            (self.channels, outlet.channel),
            (self.outlet_classes, outlet.outlet_class),
            (self.outlet_ids, order.outlet_id),
        )
        return all(not allowed or value in allowed for allowed, value in dimensions)

    def qualifies(self, line: OrderLineContext) -> bool:
        """A line matching either the SKU list or the brand list qualifies; with neither list, every line does."""
        if not self.sku_ids and not self.brands:
            return True
        return line.sku_id in self.sku_ids or (line.brand is not None and line.brand in self.brands)
