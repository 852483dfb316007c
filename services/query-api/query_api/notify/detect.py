"""The poller that diffs alert state into the delivery outbox.

Stock alerts are projected from stock-ledger's StockAlertRaised (newest version wins, projections/stock.py); every
state change of an alert has its own version. Each poll writes, per webhook subscription, one delivery row per
(alert, version) inside the subscription's scope and kinds, keyed
`stock|<kind>|<distributor>|<sku>|v<version>` ('|' is in no id)
and inserted ON CONFLICT DO NOTHING: polling again, two replicas polling at once, or a restart, never make a
second row, and a change missed while the service was down is found by the next poll (the state is still there).
A raised alert is sent to every subscription that reads it, a new subscription included; a cleared one only where
its raise was sent, so a new subscription is not flooded with history.
"""

import logging

import asyncpg

from query_api.api.caller import READERS
from query_api.notify.subscriptions import Subscription, all_subscriptions, webhooks

log = logging.getLogger(__name__)

# One statement per subscription. The body is built here, once, as text: the exact bytes signed and sent on every
# attempt. Scope: $3 the subscription's distributors (NULL for a national role), as api/caller.py resolves them.
_DIFF = """
WITH changes AS (
    SELECT a.*, 'stock|' || a.kind || '|' || a.distributor_id || '|' || a.sku_id AS alert_ref,
           d.name AS distributor_name, k.name AS sku_name
    FROM stock_alerts a
    LEFT JOIN distributors d ON d.distributor_id = a.distributor_id
    LEFT JOIN skus k ON k.sku_id = a.sku_id
    WHERE a.kind = ANY($2::text[]) AND ($3::text[] IS NULL OR a.distributor_id = ANY($3::text[]))
)
INSERT INTO notify_deliveries (subscription_id, idempotency_key, alert_ref, body)
SELECT $1, c.alert_ref || '|v' || c.version, c.alert_ref,
       json_build_object(
           'type', 'stock_alert.' || c.status,
           'delivery', c.alert_ref || '|v' || c.version,
           'subscription_id', $1::text,
           'alert', json_build_object(
               'kind', c.kind, 'status', c.status, 'distributor_id', c.distributor_id,
               'distributor_name', c.distributor_name, 'sku_id', c.sku_id, 'sku_name', c.sku_name,
               'on_hand', c.on_hand, 'avg_daily_sales', c.avg_daily_sales, 'days_of_cover', c.days_of_cover,
               'threshold_days', c.threshold_days, 'changed_at', c.changed_at, 'version', c.version)
       )::text
FROM changes c
WHERE c.status = 'raised'
   OR EXISTS (SELECT 1 FROM notify_deliveries p WHERE p.subscription_id = $1 AND p.alert_ref = c.alert_ref)
ORDER BY c.changed_at, c.alert_ref, c.version
ON CONFLICT (subscription_id, idempotency_key) DO NOTHING
"""


async def diff_subscription(conn: asyncpg.Connection, sub: Subscription) -> int:
    """New delivery rows for one webhook subscription; how many."""
    if sub.role not in READERS:  # refused at creation; a rep's scope would read as national here
        return 0
    scope = await sub.scope(conn)
    status = await conn.execute(_DIFF, sub.subscription_id, list(sub.kinds), scope.distributor_list)
    return int(str(status).rsplit(" ", 1)[-1])


# What the diff depends on, cheaply: alert versions only grow (projections/stock.py upserts WHERE version <), so
# (count, sum of versions) changes whenever any alert changes; a distributor moving region changes a regional
# subscription's scope, so the distributors' and regions' newest occurred_at and counts are in it too.
_FINGERPRINT = """
SELECT (SELECT count(*) FROM stock_alerts) AS alerts, (SELECT coalesce(sum(version), 0) FROM stock_alerts) AS versions,
       (SELECT count(*) FROM distributors) AS distributors, (SELECT max(occurred_at) FROM distributors) AS moved,
       (SELECT count(*) FROM regions) AS regions, (SELECT max(occurred_at) FROM regions) AS regions_moved
"""


class DiffMemo:
    """The state the last full diff saw, kept by the polling loop: while neither alerts, distributors nor
    subscriptions changed, a poll is one small query instead of one INSERT ... SELECT per subscription over every
    alert (measured: 5,000 alerts x 2 subscriptions, ~0.14 s a poll without it). Only a skip depends on it: a
    fresh memo (a restart) always diffs in full."""

    def __init__(self) -> None:
        self.seen: tuple[object, ...] | None = None


async def diff_alerts(pool: asyncpg.Pool, memo: DiffMemo | None = None) -> int:
    """One poll over every webhook subscription; how many deliveries were queued."""
    queued = 0
    async with pool.acquire() as conn:
        subs = webhooks(await all_subscriptions(conn))
        if memo is not None:
            row = await conn.fetchrow(_FINGERPRINT)
            state = (tuple(row), tuple(s.subscription_id for s in subs))
            if state == memo.seen:
                return 0
        for sub in subs:
            queued += await diff_subscription(conn, sub)
        if memo is not None:
            # Recorded only after every subscription's diff committed: a failure leaves the next poll to diff again.
            memo.seen = state
    if queued:
        log.info("alert deliveries queued", extra={"deliveries": queued})
    return queued
