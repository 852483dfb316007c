"""The keys that select a drill-down cell, shared by the reads of a cell (trend, provenance) and the scope."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """The keys of a drill-down cell beside its days: any of geography, SKU or brand, and rep."""

    zone: str | None = None
    region: str | None = None
    distributor: str | None = None
    outlet: str | None = None
    sku: str | None = None
    brand: str | None = None
    rep: str | None = None
    distributors: tuple[str, ...] | None = None
    """The caller's scope (api/caller.py): only sales of these distributors' outlets; None: national."""
