"""order-capture's accept_batch against an in-memory BatchStore: the write policy before any read, per-event
verdicts, copies inside a batch, and the LocationChecked stored with an accepted order only."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from order_capture.domain.geo import Point
from order_capture.domain.verification import OutletPlace
from order_capture.handlers.accept_batch import Forbidden, Ingested, accept_batch
from order_capture.settings import OrderCaptureSettings
from sellthrough_contracts.field import LocationChecked
from sellthrough_runtime.auth import Principal, Role
from tests.support.brand import event, order
from tests.support.fakes.order_capture import FakeBatchStore

REP_1 = Principal(Role.REP, "REP-1")
SETTINGS = OrderCaptureSettings(geo_reject_off_site_channels=["chemist"])
AT_THE_OUTLET = Point(28.6, 77.2)  # where tests.support.brand.order is captured
FAR_AWAY = Point(19.07, 72.87)


def accept(store: FakeBatchStore, *raw: Any, principal: Principal = REP_1) -> Ingested:
    return asyncio.run(accept_batch(list(raw), None, principal, SETTINGS, store, datetime.now(UTC)))


def statuses(ingested: Ingested) -> list[tuple[str, str | None]]:
    return [(r.status, r.reason) for r in ingested.batch.results]


def test_a_forbidden_event_refuses_the_batch_before_anything_is_read() -> None:
    store = FakeBatchStore()
    sku = event("SkuRegistered", {"sku_id": "S9", "name": "x", "brand": "B", "category": "C", "list_price": "1.00"})
    with pytest.raises(Forbidden) as refused:
        accept(store, order("O1", [("S1", 1)]), sku)
    assert [v["index"] for v in refused.value.violations] == [1]
    assert (store.reads, store.outbox) == (0, [])


def test_each_event_gets_its_own_verdict_and_only_accepted_ones_are_stored() -> None:
    store = FakeBatchStore()
    good, unknown = order("O1", [("S1", 1)]), order("O2", [("S1", 1)])
    unknown["payload"]["outlet_id"] = "O-NOWHERE"
    ingested = accept(store, good, unknown, {"not": "an event"})
    assert [s for s, _ in statuses(ingested)] == ["accepted", "rejected", "rejected"]
    assert [e.event_type for e in store.outbox] == ["OrderCaptured"]


def test_a_copy_inside_the_batch_and_a_retry_are_duplicates() -> None:
    store = FakeBatchStore()
    taken = order("O1", [("S1", 1)])
    assert statuses(accept(store, taken, taken)) == [("accepted", None), ("duplicate", None)]
    assert statuses(accept(store, taken)) == [("duplicate", None)]
    assert len(store.outbox) == 1


def test_an_order_on_site_is_stored_with_its_location_check_and_one_off_site_where_it_is_rejected_is_not() -> None:
    on_site = FakeBatchStore(places={"O1": OutletPlace("grocery", AT_THE_OUTLET)})
    ingested = accept(on_site, order("O1", [("S1", 1)]))
    assert ingested.batch.results[0].location is not None
    assert ingested.batch.results[0].location.verdict == "on_site"
    assert [type(e) for e in on_site.outbox][1:] == [LocationChecked]

    off_site = FakeBatchStore(places={"O1": OutletPlace("chemist", FAR_AWAY)})
    assert statuses(accept(off_site, order("O1", [("S1", 1)]))) == [("rejected", "off_site")]
    assert off_site.outbox == []
