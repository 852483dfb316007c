"""The simulator's own account of what it captured, written as `ledger.json` beside the device queues, so a test
or a person can hold the server's figures against it: orders (with totals per rep, outlet and rep-day), and per
rep and day the plan, attendance and every visit with the verdict the simulator meant it to get. Times are the
ones the device sent (its skewed clock), which are the ones the server's figures are made from."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass
class Ledger:
    orders: list[dict[str, Any]] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    syncs: int = 0
    network_failures: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)
    """Per rep and working day: plan, attendance, visits (see README, "Field client")."""
    queued: int = 0
    """Events put in the queues (orders, visits, attendance, and plans when published)."""
    plans: str = "none"
    """How the plans the simulator made reach order-capture: published; queued (not sent yet: `sync` sends them);
    rejected (the planner's token may not post BeatPlanned); ledger-only (no planner token); none (it made none:
    every day followed a given plan, or no rep had beats)."""
    notes: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        visits = [v for d in self.days for v in d["visits"]]
        return {
            # `events` counts everything queued, as a queue's `sent` does once synced; `orders` the orders alone.
            "events": self.queued,
            "units": sum(o["units"] for o in self.orders),
            "value": str(sum((Decimal(o["value"]) for o in self.orders), Decimal(0))),
            "totals": self._totals(),
            "off_site_event_ids": [o["event_id"] for o in self.orders if o["off_site"]],
            "off_site_visit_event_ids": [v["event_id"] for v in visits if v["off_site"]],
            "visits": len(visits),
            "attended_days": sum(1 for d in self.days if d["attendance"] == "attended"),
            "absent_days": sum(1 for d in self.days if d["attendance"] == "absent"),
            "plans": self.plans,
            "notes": self.notes,
            "orders": self.orders,
            "days": self.days,
            "devices": self.devices,
            "syncs": self.syncs,
            "network_failures": self.network_failures,
        }

    def _totals(self) -> dict[str, dict[str, dict[str, Any]]]:
        by: dict[str, dict[str, dict[str, Decimal]]] = {
            k: defaultdict(lambda: defaultdict(Decimal)) for k in ("rep", "outlet", "rep_outlet_day")
        }
        for o in self.orders:
            for level, key in (
                ("rep", o["rep_id"]),
                ("outlet", o["outlet_id"]),
                ("rep_outlet_day", f"{o['rep_id']}/{o['outlet_id']}/{o['day']}"),
            ):
                by[level][key]["units"] += o["units"]
                by[level][key]["value"] += Decimal(o["value"])
                by[level][key]["orders"] += 1
        return {
            level: {
                k: {"orders": int(v["orders"]), "units": int(v["units"]), "value": str(v["value"])}
                for k, v in sorted(rows.items())
            }
            for level, rows in by.items()
        }
