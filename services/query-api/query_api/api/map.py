"""HTTP API of the outlet map: known outlets with coordinates and secondary sales, their bounding box, and the
regions in scope with their outlines (the brand's geography, else the convex hull of their outlets)."""

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import ExportBatchDep, Format, stream_response
from query_api.api.money import Priced
from query_api.api.params import SalesFilterDep, Within
from query_api.figures.convex_hull import convex_hull
from query_api.reads.kpis import node_known
from query_api.reads.map import outlet_map, outlet_map_batches
from query_api.reads.outlines import outlet_positions, regions_in_scope
from sellthrough_runtime.dependencies import ConnectionDep, ContextDep
from sellthrough_runtime.problems import ProblemError

# Under a node of the caller's scope (api/caller.py), by default its root; closed to reps.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])

MapLimit = Annotated[int, Query(ge=1, le=20000, description="Outlets returned, largest value first.")]


class MapOutlet(BaseModel):
    id: str
    name: str
    distributor_id: str
    lat: float
    lon: float
    value: Decimal = Field(description="Secondary sales value over the range (0 if the outlet sold nothing).")
    units: int


class BoundingBox(BaseModel):
    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float


OutlineSource = Literal["defined", "outlets_hull", "none"]


class MapRegion(BaseModel):
    id: str
    name: str
    outline: list[list[tuple[float, float]]] | None = Field(
        description="Closed [lon, lat] rings: the region's own outline (GeographyDefined), else the convex hull of "
        "its outlets the caller may read; null when neither exists (no outline, fewer than three outlet positions)."
    )
    outline_source: OutlineSource = Field(
        description="defined: from the brand's geography; outlets_hull: drawn from the outlets; none: not drawn."
    )


class MapResponse(Priced):
    date_from: date
    date_to: date
    brand: str | None
    sku_id: str | None
    within: str | None = Field(description="The zone, region or distributor the outlets are under.")
    outlets: list[MapOutlet] = Field(description="Known outlets in scope, largest value first (see limit).")
    total_outlets: int = Field(description="Outlets in scope, which may exceed the outlets returned.")
    max_value: Decimal = Field(description="Largest outlet value in scope (the top of a colour scale).")
    bounds: BoundingBox | None = Field(description="Bounding box of every outlet in scope; null if there is none.")
    regions: list[MapRegion] = Field(
        default_factory=list, description="The regions of the outlets in scope (and, nationally, under `within`)."
    )


@router.get("/outlets/map", response_model=MapResponse, operation_id="get_outlet_map", tags=["kpis"])
async def get_outlet_map(
    scope: CallerScope,
    conn: ConnectionDep,
    context: ContextDep,
    batch: ExportBatchDep,
    f: SalesFilterDep,
    within: Within = None,
    limit: MapLimit = 5000,
    fmt: Format = "json",
) -> MapResponse | Response:
    """Every known outlet under `within` with its coordinates and secondary sales over the range, for a map of
    outlets by performance. Outlets that sold nothing are listed with zero; values equal /v1/sales?level=outlet.
    As a file (format=csv, parquet, xlsx): every outlet in scope, whatever `limit`, streamed from a cursor."""
    if within is not None:
        await scope.require_any(conn, within)
    if within is not None and not await node_known(conn, within):
        raise ProblemError(404, "unknown-node", f"No zone, region, distributor or outlet '{within}' is known.")
    if fmt != "json":
        args = (f.date_from, f.date_to, f.brand, f.sku_id, within, None, scope.distributor_list)
        return stream_response(MapOutlet, _exported(context, args, batch), "outlets", fmt)
    records = await outlet_map(conn, f.date_from, f.date_to, f.brand, f.sku_id, within, limit, scope.distributor_list)
    first = records[0] if records else None
    regions = await _regions(conn, within, scope.distributor_list)
    return MapResponse(
        date_from=f.date_from,
        date_to=f.date_to,
        brand=f.brand,
        sku_id=f.sku_id,
        within=within,
        outlets=[
            MapOutlet(
                id=r["id"],
                name=r["name"],
                distributor_id=r["distributor_id"],
                lat=r["lat"],
                lon=r["lon"],
                value=r["value"],
                units=int(r["units"]),
            )
            for r in records
        ],
        total_outlets=int(first["total_outlets"]) if first else 0,
        max_value=first["max_value"] if first else Decimal(0),
        bounds=BoundingBox(
            min_lat=first["min_lat"], min_lon=first["min_lon"], max_lat=first["max_lat"], max_lon=first["max_lon"]
        )
        if first
        else None,
        regions=regions,
    )


async def _regions(conn: ConnectionDep, within: str | None, distributors: list[str] | None) -> list[MapRegion]:
    """The regions in scope, each with its defined outline or else its outlets' convex hull."""
    rows = await regions_in_scope(conn, within, distributors)
    positions = await outlet_positions(conn, [r.id for r in rows if r.outline is None], distributors)
    regions = []
    for r in rows:
        hull = None if r.outline is not None else convex_hull(positions.get(r.id, []))
        outline = r.outline if r.outline is not None else ([hull] if hull else None)
        source: OutlineSource = "defined" if r.outline is not None else "outlets_hull" if hull else "none"
        regions.append(MapRegion(id=r.id, name=r.name, outline=outline, outline_source=source))
    return regions


async def _exported(context: ContextDep, args: tuple[object, ...], batch: int) -> AsyncIterator[list[MapOutlet]]:
    async for records in outlet_map_batches(context.pool, args, batch):
        yield [_map_outlet(r) for r in records]


def _map_outlet(r: object) -> MapOutlet:
    record = dict(r)  # type: ignore[call-overload]
    return MapOutlet(**{name: record[name] for name in MapOutlet.model_fields})
