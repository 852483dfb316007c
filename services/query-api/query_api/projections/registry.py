"""Every projection of query-api, in the order a batch is written: the one list to extend when adding one.

The order matters inside a batch's transaction: dimensions first (sales rollups read outlets and SKUs), sales before
reconciliation's readers and KPIs, freshness last (main.ProjectionHandler)."""

from collections.abc import Sequence
from typing import Any

from query_api.projections.base import Projection
from query_api.projections.dimensions import DIMENSIONS
from query_api.projections.field import FIELD
from query_api.projections.field_checks import FIELD_CHECKS
from query_api.projections.kpis import KPIS
from query_api.projections.outlet_visits import VISITS
from query_api.projections.reconciliation import RECONCILIATION
from query_api.projections.retailer_invoices import RETAILER_INVOICES
from query_api.projections.sales import SALES
from query_api.projections.schemes import SCHEMES
from query_api.projections.stock import STOCK
from sellthrough_contracts import Envelope, type_names
from sellthrough_contracts.lean import LEAN_CONTRACTS, LeanEvent

PROJECTIONS: tuple[Projection[Any], ...] = (
    DIMENSIONS,
    SALES,
    RETAILER_INVOICES,
    STOCK,
    RECONCILIATION,
    SCHEMES,
    KPIS,
    VISITS,
    FIELD,
    FIELD_CHECKS,
)

CONSUMED: frozenset[type[Envelope]] = frozenset(cls for projection in PROJECTIONS for cls in projection.consumes)
PROJECTION_TYPES = type_names(CONSUMED)
"""Every event type a projection of this service applies; the consumer skips the others."""

_ROUTES: dict[type[Envelope] | type[LeanEvent], tuple[int, ...]] = {
    cls: tuple(i for i, projection in enumerate(PROJECTIONS) if cls in projection.consumes) for cls in CONSUMED
}
_ROUTES |= {lean: _ROUTES[contract] for lean, contract in LEAN_CONTRACTS.items()}
"""Contract class (or lean struct, routed as its contract class) -> the positions in PROJECTIONS of the
projections that consume it."""


def route(events: Sequence[Envelope]) -> list[list[Envelope]]:
    """Each projection's events (of the classes it consumes, in batch order), by position in PROJECTIONS: one dict
    lookup per event."""
    shares: list[list[Envelope]] = [[] for _ in PROJECTIONS]
    for event in events:
        for i in _ROUTES.get(type(event), ()):
            shares[i].append(event)
    return shares
