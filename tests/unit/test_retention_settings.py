"""Retention windows that would let a consumer apply a republished copy twice are refused at start-up."""

import pytest
from pydantic import ValidationError

from sellthrough_runtime.settings import ServiceSettings


def test_processed_ids_must_outlive_the_outbox_window_by_a_day() -> None:
    with pytest.raises(ValidationError, match="RETENTION_PROCESSED_EVENTS_DAYS"):
        ServiceSettings(retention_outbox_days=7, retention_processed_events_days=7.5)
    assert ServiceSettings(retention_outbox_days=7, retention_processed_events_days=8).retention_processed_events_days
    assert ServiceSettings().retention_processed_events_days is None, "kept unless configured"
