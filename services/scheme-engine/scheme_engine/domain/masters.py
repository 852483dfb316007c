"""Which masters a batch changed: orders judged with an older copy of them are judged again. Pure."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MasterChanges:
    outlet_ids: list[str] = field(default_factory=list)
    distributor_ids: list[str] = field(default_factory=list)
    region_ids: list[str] = field(default_factory=list)
    sku_ids: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.outlet_ids or self.distributor_ids or self.region_ids or self.sku_ids)
