"""The convex hull of a set of [lon, lat] positions (Andrew's monotone chain), as a closed ring.

The stand-in outline of a region whose GeographyDefined has none: drawn from its outlets, so the map still shows
where the region's trade is. Planar on degrees, which is fine at a region's scale and for drawing only.
"""

from collections.abc import Iterable

Position = tuple[float, float]


def _cross(o: Position, a: Position, b: Position) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(positions: Iterable[Position]) -> list[Position] | None:
    """The hull counter-clockwise, its last position equal to its first; None when the positions span no area
    (fewer than three distinct ones, or all on one line): there is nothing to outline."""
    points = sorted(set(positions))
    if len(points) < 3:
        return None
    lower: list[Position] = []
    for p in points:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Position] = []
    for p in reversed(points):
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    ring = lower[:-1] + upper[:-1]
    if len(ring) < 3:
        return None  # collinear: the chains met in a segment
    return [*ring, ring[0]]
