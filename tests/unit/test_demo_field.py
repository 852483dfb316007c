"""`make dev`'s field week (devstack demo_field.py): the simulator's plan takes about as many orders as the history
would have had on those days, and its queues hold them for the phones to sync (no server here)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sellthrough_field.queue import EventQueue
from sellthrough_field.reference import world_from

from sellthrough_devstack.demo import DemoSize, generate
from sellthrough_devstack.demo_field import field_plan, planned_calls, rep_ids, simulate

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
SIZE = DemoSize(distributors=12, outlets=600, skus=40, reps=30, orders=1500, days=42)


def test_the_field_week_has_about_the_orders_the_history_left_to_it(tmp_path: Path) -> None:
    brand = generate(SIZE, seed=3, now=NOW, field_days=7)
    world = world_from(brand.reference)
    plan = field_plan(world, 7, NOW.date() - timedelta(days=1), brand.field_orders, seed=7)
    assert 0.05 <= plan.order_share < 1.0
    assert abs(plan.order_share * planned_calls(world, plan) - brand.field_orders) < 1

    simulate(tmp_path, brand.reference, plan, {})

    ledger = json.loads((tmp_path / "ledger.json").read_text())
    assert 0.8 * brand.field_orders < len(ledger["orders"]) < 1.2 * brand.field_orders
    queued = 0
    for path in sorted(tmp_path.glob("*.sqlite")):
        with EventQueue(path) as queue:
            assert queue.meta("actor") in rep_ids(brand.reference)
            assert queue.meta("device_id") == f"{queue.meta('actor')}-phone"
            queued += queue.counts().pending
    # Nothing was sent: every phone was out of coverage while it captured, the loader syncs them afterwards.
    assert queued >= len(ledger["orders"])
