"""The location verdict of a capture at an outlet. Pure: no I/O (README, "Field verification").

Rules, first match wins:
- `mock_location`: the device says its position is mocked; nothing it reports about place can be trusted;
- `no_gps`: the event carries no position;
- `outlet_not_geotagged`: the outlet has no geotag (no location in master data, or the (0, 0) placeholder that
  master-data exports write for "unknown", and no admin OutletGeotagged yet);
- `off_site`: even with the whole reported accuracy in the device's favour the position is beyond the radius
  (distance - accuracy > radius): a fix 900 km away is off site however poor its accuracy;
- `low_accuracy`: the fix is coarser than `max_accuracy_m` (or gives no accuracy), so on site cannot be told;
- `on_site`: within radius + accuracy; else `off_site`.
"""

import math
from dataclasses import dataclass

from sellthrough_contracts.field import LocationVerdict

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), in metres: the haversine error against the ellipsoid stays under 0.5 %."""


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def haversine_m(a: Point, b: Point) -> float:
    """Great-circle distance between two WGS84 points, in metres."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    d_phi, d_lambda = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    # min(): rounding can push h a hair above 1 for antipodal points, outside asin's domain.
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def is_geotag(point: Point | None) -> bool:
    """A usable outlet geotag: (0, 0), "null island", is the placeholder exports write for an unknown place."""
    return point is not None and not (point.lat == 0 and point.lon == 0)


@dataclass(frozen=True)
class Fix:
    """What the device reported."""

    point: Point | None
    accuracy_m: float | None
    mock_location: bool = False


@dataclass(frozen=True)
class Rule:
    """The radius in force for one outlet's channel."""

    radius_m: float
    max_accuracy_m: float


@dataclass(frozen=True)
class Verdict:
    verdict: LocationVerdict
    distance_m: float | None
    accuracy_m: float | None
    radius_m: float

    @property
    def verified(self) -> bool:
        return self.verdict == "on_site"


def judge(fix: Fix, outlet: Point | None, rule: Rule) -> Verdict:
    """The verdict of one capture (rules in the module docstring)."""
    distance = haversine_m(fix.point, outlet) if fix.point is not None and outlet and is_geotag(outlet) else None

    def verdict(name: LocationVerdict) -> Verdict:
        rounded = None if distance is None else round(distance, 1)
        return Verdict(name, rounded, fix.accuracy_m, rule.radius_m)

    if fix.mock_location:
        return verdict("mock_location")
    if fix.point is None:
        return verdict("no_gps")
    if distance is None:
        return verdict("outlet_not_geotagged")
    accuracy = fix.accuracy_m
    if distance - (accuracy or 0.0) > rule.radius_m:
        return verdict("off_site")
    if accuracy is None or accuracy > rule.max_accuracy_m:
        return verdict("low_accuracy")
    return verdict("on_site")
