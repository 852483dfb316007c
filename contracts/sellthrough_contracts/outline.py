"""A geography's outline: closed lon/lat rings, validated so a map can draw them as they are.

Positions are [lon, lat] as in GeoJSON (x before y). Each ring is an outer boundary; a region in pieces (an island,
an enclave) has a ring per piece. Limits keep one reference event small: an outline is for drawing, not surveying.
"""

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_RINGS = 20
MAX_POSITIONS = 2000
"""Positions per ring; a region's outline simplified for a dashboard needs tens to hundreds."""

Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]
Position = tuple[Lon, Lat]


def _closed_ring(ring: list[Position]) -> list[Position]:
    # A ring that does not end where it starts would be closed by one renderer and left open by another.
    if ring[0] != ring[-1]:
        raise ValueError("a ring must be closed: its last position must equal its first")
    if len(set(ring)) < 3:
        raise ValueError("a ring needs at least three distinct positions")
    return ring


Ring = Annotated[
    list[Position],
    Field(min_length=4, max_length=MAX_POSITIONS, description="[lon, lat] positions, the last equal to the first."),
    AfterValidator(_closed_ring),
]
Outline = Annotated[list[Ring], Field(min_length=1, max_length=MAX_RINGS)]
