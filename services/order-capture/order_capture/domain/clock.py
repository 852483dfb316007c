"""When an event may have happened. The edge refuses times a consumer cannot use: before 2000-01-01 (a
default-initialised device clock, year 1, makes the ledger's time arithmetic fail), beyond what converting to
any time zone or adding a day can represent, and older than the poster's role may back-date."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from order_capture.domain.fields import dotted, values_of
from sellthrough_contracts import Envelope

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No event, and no time inside one, before this: nothing this system records happened earlier."""
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""A day short of the largest datetime: consumers convert times to other zones and add days to them, and a
scheme's open end (valid_to) is often written as the last day of year 9999."""

_TIMES = (datetime, date)


@dataclass(frozen=True)
class Window:
    """How far from server time an event's occurred_at may be, for one poster."""

    now: datetime
    max_age: timedelta
    future_tolerance: timedelta
    role: str

    @property
    def earliest(self) -> datetime:
        return max(EARLIEST, self.now - self.max_age)

    def too_early(self, occurred_at: datetime) -> str | None:
        """Why occurred_at is before the window, or None."""
        if occurred_at >= self.earliest:
            return None
        return (
            f"occurred_at {occurred_at.isoformat()} is before the accepted window: a {self.role} may post events "
            f"from {self.earliest.isoformat()} (server time {self.now.isoformat()} minus {self.max_age.days} days, "
            f"never before {EARLIEST.date().isoformat()})"
        )

    def too_late(self, occurred_at: datetime) -> str | None:
        """Why occurred_at is ahead of server time by more than a device clock may be, or None."""
        if occurred_at <= self.now + self.future_tolerance:
            return None
        return (
            f"occurred_at {occurred_at.isoformat()} is ahead of server time {self.now.isoformat()} "
            f"by more than {int(self.future_tolerance.total_seconds())}s; check the device clock"
        )


def payload_time_errors(event: Envelope) -> list[dict[str, str]]:
    """Field errors for timestamps and dates inside the payload (counted_at, invoice_date, scheme validity...)
    outside [EARLIEST, LATEST]."""
    errors = []
    for path, value in values_of(getattr(event, "payload", None), _TIMES, ("payload",)):
        # datetime is a date too: compare each with bounds of its own kind.
        low, high = (EARLIEST, LATEST) if isinstance(value, datetime) else (EARLIEST.date(), LATEST.date())
        if not low <= value <= high:
            errors.append(
                {
                    "field": dotted(path),
                    "message": f"{value.isoformat()} is outside {low.isoformat()} .. {high.isoformat()}",
                }
            )
    return errors
