"""The registry of query-api's projections and the dispatch of every consumer's handler: which contract classes each
consumes, written out here rather than read from the code, so a type dropped from a dispatch fails a test."""

import dataclasses
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest

from order_capture.adapters.masters import WANTED_TYPES as ORDER_CAPTURE_TYPES
from order_capture.domain.verification import CHECKED_EVENT_TYPES
from query_api.main import consumer_spec
from query_api.projections.base import Projection
from query_api.projections.freshness import SOURCES
from query_api.projections.handler import ProjectionHandler
from query_api.projections.registry import CONSUMED, PROJECTION_TYPES, PROJECTIONS, route
from scheme_engine.handlers.evaluation import SCHEME_ENGINE_TYPES
from sellthrough_contracts import EVENT_TYPES, Envelope, parse_event, type_names
from sellthrough_contracts.field import (
    BeatPlanned,
    CheckedEventType,
    DayEnded,
    DayStarted,
    LocationChecked,
    OutletGeotagged,
)
from sellthrough_contracts.reference import (
    DistributorRegistered,
    GeographyDefined,
    OutletRegistered,
    RepRegistered,
    SkuRegistered,
)
from sellthrough_contracts.schemes import (
    ClaimAssessed,
    SchemeAmended,
    SchemeApplied,
    SchemeClaimSubmitted,
    SchemeEnded,
    SchemeLaunched,
)
from sellthrough_contracts.stock import StockAlertRaised, StockPositionChanged, StockVarianceRecorded
from sellthrough_contracts.trade import (
    OrderCancelled,
    OrderCaptured,
    OrderDelivered,
    PrimaryInvoiced,
    RetailerInvoiced,
    ReturnRecorded,
    StockAdjusted,
    StockCounted,
    VisitRecorded,
)
from stock_ledger.domain.movements import count_lines_of, movements_of
from stock_ledger.handlers.ledger import LEDGER_TYPES
from tests.support.brand import invoice, order, reference_events, retailer_invoice, stock_count

REFERENCE = {GeographyDefined, DistributorRegistered, OutletRegistered, SkuRegistered, RepRegistered}
EXPECTED: dict[str, set[type[Envelope]]] = {
    "dimensions": REFERENCE,
    "sales_daily": {OrderCaptured, OrderCancelled, OrderDelivered, ReturnRecorded},
    "retailer_invoices": {RetailerInvoiced},
    "stock": {StockPositionChanged, StockVarianceRecorded, StockAlertRaised, PrimaryInvoiced},
    "reconciliation": {PrimaryInvoiced, StockAdjusted, StockCounted},
    "schemes": {SchemeLaunched, SchemeAmended, SchemeEnded, SchemeApplied, ClaimAssessed},
    "kpis": {OrderCaptured, VisitRecorded, OrderDelivered},
    "outlet_visits": {VisitRecorded},
    "field": {VisitRecorded, BeatPlanned, DayStarted, DayEnded},
    "field_checks": {LocationChecked, OutletGeotagged},
}
"""Each projection, in the order a batch is written (dimensions before the sales rollups that read them), and the
contract classes it applies."""
ZONE = ZoneInfo("Asia/Kolkata")


def test_the_registry_lists_every_projection_in_write_order_with_the_classes_it_consumes() -> None:
    assert [(p.name, set(p.consumes)) for p in PROJECTIONS] == list(EXPECTED.items())


def test_the_consumer_wants_exactly_the_types_the_registry_consumes() -> None:
    wanted = set().union(*EXPECTED.values())
    assert consumer_spec().wanted_types == PROJECTION_TYPES == type_names(wanted)
    assert wanted == CONSUMED


def test_every_consumed_class_is_a_contract_class() -> None:
    for projection in PROJECTIONS:
        for cls in projection.consumes:
            assert EVENT_TYPES[cls.type_name()] is cls, (projection.name, cls)
    for source in SOURCES.values():
        assert source.consumes <= CONSUMED


def test_a_class_s_type_name_is_its_event_type() -> None:
    assert OrderCaptured.type_name() == "OrderCaptured"
    assert type_names([SkuRegistered, LocationChecked]) == {"SkuRegistered", "LocationChecked"}
    assert set(get_args(CheckedEventType)) == CHECKED_EVENT_TYPES


def sample_batch() -> list[Envelope]:
    """Reference data, an order, an invoice, a count and a distributor's invoice to a retailer, in that order."""
    raw = [
        *reference_events(),
        order("O1", [("S1", 2)]),
        invoice("2026-11-20"),
        stock_count("2026-11-20T10:00:00Z"),
        retailer_invoice("O2", [("S2", 3)]),
    ]
    return [parse_event(r) for r in raw]


def test_each_projection_is_handed_only_the_events_it_consumes_in_batch_order() -> None:
    batch = sample_batch()
    for projection, share in zip(PROJECTIONS, route(batch), strict=True):
        assert share == [e for e in batch if type(e) in EXPECTED[projection.name]], projection.name


def prepared_something(prepared: Any) -> bool:
    """Whether a projection's prepared writes hold any row (its zone aside)."""
    if prepared is None:
        return False
    if dataclasses.is_dataclass(prepared):
        values = [getattr(prepared, f.name) for f in dataclasses.fields(prepared)]
        return any(bool(v) for v in values if not isinstance(v, ZoneInfo | tuple))
    return bool(prepared)


@pytest.mark.parametrize("projection", PROJECTIONS, ids=lambda p: p.name)
def test_a_projection_prepares_rows_from_every_sample_class_it_consumes(projection: Projection[Any]) -> None:
    samples = {type(e): e for e in sample_batch()}
    for cls in set(projection.consumes) & set(samples):
        if cls is OrderDelivered:
            continue
        assert prepared_something(projection.prepare([samples[cls]], ZONE)), (projection.name, cls)
    assert not prepared_something(projection.prepare([], ZONE))


def test_the_handler_prepares_only_the_projections_a_batch_feeds_in_registry_order() -> None:
    prepared = ProjectionHandler(ZONE).prepare(sample_batch())
    assert [p.name for p, _ in prepared.steps] == [
        "dimensions",
        "sales_daily",
        "retailer_invoices",
        "stock",
        "reconciliation",
        "kpis",
    ]
    assert {times[0] for times in prepared.freshness} == {
        "sales_daily",
        "retailer_invoices",
        "kpi_sales",
        "primary_daily",
    }


def test_the_other_consumers_want_what_their_handlers_dispatch() -> None:
    assert (
        type_names(
            {
                PrimaryInvoiced,
                RetailerInvoiced,
                OrderCaptured,
                OrderDelivered,
                OrderCancelled,
                ReturnRecorded,
                StockAdjusted,
                StockCounted,
            }
            | {SkuRegistered}
        )
        == LEDGER_TYPES
    )
    assert (
        type_names(
            (REFERENCE - {RepRegistered})
            | {SchemeLaunched, SchemeAmended, SchemeEnded, SchemeClaimSubmitted}
            | {OrderCaptured, OrderCancelled, ReturnRecorded}
        )
        == SCHEME_ENGINE_TYPES
    )
    assert type_names((REFERENCE - {GeographyDefined}) | {OutletGeotagged}) == ORDER_CAPTURE_TYPES


def test_the_ledger_moves_stock_for_each_movement_class_and_counts_for_a_count() -> None:
    samples = {type(e): e for e in sample_batch()}
    assert [m.kind for m in movements_of(samples[PrimaryInvoiced])] == ["primary"]
    assert [(m.kind, m.delta) for m in movements_of(samples[OrderCaptured])] == [("order", -2)]
    assert movements_of(samples[SkuRegistered]) == []
    assert [c.quantity for c in count_lines_of(samples[StockCounted])] == [5]
    assert [(m.kind, m.delta, m.order_id) for m in movements_of(samples[RetailerInvoiced])] == [("delivery", -3, None)]
