"""Region outlines for the outlet map: GeographyDefined's optional outline is validated (closed lon/lat rings in
range, small enough to draw), and a region without one gets the convex hull of its outlets."""

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from query_api.figures.convex_hull import convex_hull
from sellthrough_contracts.outline import MAX_POSITIONS
from sellthrough_contracts.reference import GeographyDefined, GeographyPayload

SQUARE = [[77.0, 28.0], [78.0, 28.0], [78.0, 29.0], [77.0, 29.0], [77.0, 28.0]]


def region(outline: Any) -> GeographyPayload:
    return GeographyPayload.model_validate(
        {"geo_id": "R1", "level": "region", "name": "Delhi", "parent_id": "Z1", "outline": outline}
    )


def test_an_outline_is_optional_and_kept_as_lon_lat_rings() -> None:
    assert region(None).outline is None
    island = [[72.8, 18.9], [72.9, 18.9], [72.9, 19.0], [72.8, 18.9]]
    outline = region([SQUARE, island]).outline
    assert outline is not None
    assert outline[0][1] == (78.0, 28.0)
    assert len(outline) == 2
    dumped = GeographyDefined.model_json_schema()
    assert "outline" in dumped["$defs"]["GeographyPayload"]["properties"]


@pytest.mark.parametrize(
    ("outline", "why"),
    [
        ([[[77.0, 28.0], [78.0, 28.0], [78.0, 29.0], [77.0, 29.0]]], "closed"),
        ([[[77.0, 28.0], [78.0, 28.0], [77.0, 28.0], [77.0, 28.0]]], "three distinct"),
        ([[[77.0, 28.0], [78.0, 28.0], [77.0, 28.0]]], "at least 4"),
        ([[[181.0, 28.0], [78.0, 28.0], [78.0, 29.0], [181.0, 28.0]]], "less than or equal to 180"),
        ([[[77.0, -91.0], [78.0, 28.0], [78.0, 29.0], [77.0, -91.0]]], "greater than or equal to -90"),
        ([], "at least 1"),
        ([[[77.0, 28.0, 5.0], [78.0, 28.0], [78.0, 29.0], [77.0, 28.0, 5.0]]], "at most 2"),
        ([[[77.0 + i / 1e4, 28.0] for i in range(MAX_POSITIONS)] + [[77.0, 28.0]]], "at most"),
    ],
)
def test_a_malformed_outline_is_rejected(outline: Any, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        region(outline)


def test_the_hull_of_outlets_is_a_closed_counter_clockwise_ring_without_inner_points() -> None:
    points = [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (1.0, 1.0), (1.0, 0.0), (0.5, 1.5)]
    hull = convex_hull(points)
    assert hull == [(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (0.0, 0.0)]
    area = sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(hull)) / 2
    assert area == 4.0  # positive: counter-clockwise
    # The hull is itself a valid outline.
    assert region([[list(p) for p in hull]]).outline is not None


@pytest.mark.parametrize(
    "points",
    [[], [(1.0, 1.0)], [(1.0, 1.0), (1.0, 1.0), (2.0, 2.0)], [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]],
)
def test_positions_that_span_no_area_have_no_hull(points: list[tuple[float, float]]) -> None:
    assert convex_hull(points) is None
