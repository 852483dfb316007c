"""A scheme's state as the history of its definitions, so any order is judged by the version in effect at
its own occurred_at (event time), however late it arrives.

- SchemeLaunched gives the base definition. A second launch of the same scheme replaces it when it was
  recorded later (envelope occurred_at, then event_id): like reference data, a later word wins.
- SchemeAmended replaces the whole definition for orders at or after its `effective_from`; the latest
  `effective_from` not after the order wins, two amendments effective at the same instant are ordered by
  when they were recorded. An amendment may be retroactive; the consumer then re-evaluates the orders it
  covers.
- SchemeEnded: orders at or after `ended_at` earn nothing, whichever version is in effect. The latest
  recorded end wins, so an end can be corrected.
- Inside the version in effect, the order must also fall in that version's [valid_from, valid_to).

Applying events is idempotent and commutative: any arrival order of the same events gives the same state.
Budget caps are not sliced by time: they are scheme-wide and come from the latest recorded definition
(`budget_definition`), see budget.py.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from scheme_engine.domain.targeting import Audience
from sellthrough_contracts.schemes import SchemeAmended, SchemeDefinition, SchemeEnded, SchemeLaunched

SchemeEvent = SchemeLaunched | SchemeAmended | SchemeEnded
Recorded = tuple[datetime, UUID]
"""When the event itself was recorded at its source, then its id: a total order over a scheme's events."""

EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SchemeVersion:
    definition: SchemeDefinition
    effective_from: datetime
    recorded: Recorded
    audience: Audience

    @classmethod
    def of(cls, definition: SchemeDefinition, effective_from: datetime, recorded: Recorded) -> "SchemeVersion":
        return cls(definition, effective_from, recorded, Audience.of(definition))

    def covers(self, at: datetime) -> bool:
        return self.definition.valid_from <= at < self.definition.valid_to


@dataclass(frozen=True, slots=True)
class SchemeEnd:
    ended_at: datetime
    recorded: Recorded


@dataclass(frozen=True, slots=True)
class SchemeHistory:
    scheme_id: str
    launch: SchemeVersion | None = None
    amendments: tuple[SchemeVersion, ...] = ()
    end: SchemeEnd | None = None

    @classmethod
    def launched(cls, definition: SchemeDefinition) -> "SchemeHistory":
        """A scheme with one definition and no amendments, e.g. for tests or a replay from a snapshot."""
        return cls(definition.scheme_id, launch=SchemeVersion.of(definition, EARLIEST, (EARLIEST, UUID(int=0))))

    def version_at(self, at: datetime) -> SchemeVersion | None:
        """The version an order taken at `at` is judged by; None if the scheme does not run then."""
        if self.end is not None and at >= self.end.ended_at:
            return None
        version = self.launch
        for amendment in self.amendments:
            if amendment.effective_from > at:
                break
            version = amendment
        return version if version is not None and version.covers(at) else None

    @property
    def versions(self) -> tuple[SchemeVersion, ...]:
        return ((self.launch,) if self.launch else ()) + self.amendments

    @property
    def budget_definition(self) -> SchemeDefinition | None:
        """The latest recorded definition: the one whose budget caps apply to every order of the scheme."""
        versions = self.versions
        return max(versions, key=lambda v: v.recorded).definition if versions else None

    def with_event(self, event: SchemeEvent) -> "SchemeHistory":
        if event.payload.scheme_id != self.scheme_id:
            raise ValueError(f"event for scheme {event.payload.scheme_id} applied to {self.scheme_id}")
        return _APPLY[type(event)](self, event, (event.occurred_at, event.event_id))

    def _launched(self, event: SchemeLaunched, recorded: Recorded) -> "SchemeHistory":
        if self.launch is not None and self.launch.recorded >= recorded:
            return self
        return replace(self, launch=SchemeVersion.of(event.payload, EARLIEST, recorded))

    def _amended(self, event: SchemeAmended, recorded: Recorded) -> "SchemeHistory":
        if any(amendment.recorded == recorded for amendment in self.amendments):
            return self
        amendment = SchemeVersion.of(event.payload, event.payload.effective_from, recorded)
        ordered = sorted((*self.amendments, amendment), key=lambda v: (v.effective_from, v.recorded))
        return replace(self, amendments=tuple(ordered))

    def _ended(self, event: SchemeEnded, recorded: Recorded) -> "SchemeHistory":
        if self.end is not None and self.end.recorded >= recorded:
            return self
        return replace(self, end=SchemeEnd(event.payload.ended_at, recorded))


_APPLY: Mapping[type[SchemeEvent], Callable[[SchemeHistory, Any, Recorded], SchemeHistory]] = {
    SchemeLaunched: SchemeHistory._launched,
    SchemeAmended: SchemeHistory._amended,
    SchemeEnded: SchemeHistory._ended,
}
"""How each kind of scheme event changes a history."""


@dataclass(frozen=True, slots=True)
class SchemesState:
    """Every scheme's history by scheme id. Treat as immutable: `apply` returns a new state."""

    schemes: Mapping[str, SchemeHistory] = field(default_factory=dict)

    @classmethod
    def of(cls, *definitions: SchemeDefinition) -> "SchemesState":
        return cls({d.scheme_id: SchemeHistory.launched(d) for d in definitions})

    @classmethod
    def from_events(cls, events: Iterable[SchemeEvent]) -> "SchemesState":
        state = cls()
        for event in events:
            state = state.apply(event)
        return state

    def apply(self, event: SchemeEvent) -> "SchemesState":
        scheme_id = event.payload.scheme_id
        history = self.schemes.get(scheme_id, SchemeHistory(scheme_id))
        return SchemesState({**self.schemes, scheme_id: history.with_event(event)})

    def get(self, scheme_id: str) -> SchemeHistory | None:
        return self.schemes.get(scheme_id)

    def histories(self) -> list[SchemeHistory]:
        """Sorted by scheme id, so evaluation never depends on the order schemes were added."""
        return [self.schemes[scheme_id] for scheme_id in sorted(self.schemes)]
