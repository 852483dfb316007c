from sellthrough_contracts import parse_event
from sellthrough_contracts.reference import OutletRegistered, RepRegistered, SkuRegistered
from sellthrough_contracts.trade import OrderCaptured
from sellthrough_devstack.demo import DemoSize, generate


def test_demo_brand_is_valid_deterministic_and_consistent() -> None:
    size = DemoSize(distributors=6, outlets=60, skus=20, reps=12, orders=200, days=14)
    brand = generate(size, seed=3)
    again = generate(size, seed=3)
    reference = [parse_event(e) for e in brand.reference]
    orders = [parse_event(e) for e in brand.orders]

    assert [e["event_id"] for e in brand.orders] == [e["event_id"] for e in again.orders]
    outlets = {e.payload.outlet_id: e.payload.distributor_id for e in reference if isinstance(e, OutletRegistered)}
    reps = {e.payload.rep_id: e.payload.distributor_id for e in reference if isinstance(e, RepRegistered)}
    skus = {e.payload.sku_id for e in reference if isinstance(e, SkuRegistered)}
    assert (len(outlets), len(skus)) == (60, 20)
    assert len(orders) == 200
    for o in orders:
        assert isinstance(o, OrderCaptured)
        assert outlets[o.payload.outlet_id] == o.payload.distributor_id
        assert reps[o.payload.rep_id] == o.payload.distributor_id
        assert {line.sku_id for line in o.payload.lines} <= skus
        assert o.actor == o.payload.rep_id
