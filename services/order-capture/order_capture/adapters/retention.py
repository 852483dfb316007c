"""Retention of idempotency keys: a key is needed only while a retry of its event could still be accepted."""

from datetime import timedelta

from order_capture.settings import OrderCaptureSettings
from sellthrough_runtime.retention import PruneRule
from sellthrough_runtime.settings import ServiceSettings

# The BRIN index on accepted_at (migration 0006) finds the old ranges without reading the young ones.
_IDEMPOTENCY_KEYS = """
DELETE FROM idempotency_keys
WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys WHERE accepted_at < $1 LIMIT $2))
"""


def retention_rules(settings: ServiceSettings) -> list[PruneRule]:
    """order-capture's tables to prune besides the runtime's (app.py asks with the service's settings)."""
    assert isinstance(settings, OrderCaptureSettings)
    return [PruneRule("idempotency_keys", timedelta(days=settings.idempotency_key_days), _IDEMPOTENCY_KEYS)]
