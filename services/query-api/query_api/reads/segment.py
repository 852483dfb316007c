"""Outlets selected by channel and class, a filter of several reads."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Outlets by their channel and class (OutletRegistered): any of the channels and any of the classes given.
    Sales of outlets reference data has not described yet fall outside every segment."""

    channels: list[str] | None = None
    outlet_classes: list[str] | None = None

    @property
    def narrowed(self) -> bool:
        return self.channels is not None or self.outlet_classes is not None
