"""Building events a service derives from the events it consumes (stock positions, scheme benefits...)."""

import uuid
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel

from sellthrough_contracts import Envelope

E = TypeVar("E", bound=Envelope)


def derive(
    event_type: type[E], payload: BaseModel, *, occurred_at: datetime, cause: uuid.UUID | None, source: str
) -> E:
    """A new derived event: fresh id, server time now, the deriving service as source and actor, and the event
    it came from as causation_id (which also carries its trace onward; see tracing.carrier_for)."""
    now = datetime.now(UTC)
    event = event_type.model_validate(
        {
            "event_id": uuid.uuid4(),
            "occurred_at": occurred_at,
            "recorded_at": now,
            "source": source,
            "actor": source,
            "causation_id": cause,
            "payload": payload,
        }
    )
    return event.stamped(now)
