"""HTTP API of field verification (README, "Field verification"): geo-verified shares by rep, distributor and
region, reps with repeated off-site orders, sync delays by rep and device, device clock skew. Narrowed to the
caller's scope (api/caller.py): a rep reads its own captures, a manager or distributor its territory's."""

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import Format, export_response
from query_api.api.params import Days, WindowDep
from query_api.reads.geo import (
    DelayBy,
    ShareBy,
    clock_skews,
    geotag_proposals,
    off_site_reps,
    sync_delays,
    verified_shares,
)
from query_api.settings import QueryApiSettings
from sellthrough_contracts.field import CheckedEventType
from sellthrough_runtime.auth import Role
from sellthrough_runtime.dependencies import ConnectionDep, settings_of

SettingsDep = Annotated[QueryApiSettings, Depends(settings_of(QueryApiSettings))]
router = APIRouter(prefix="/v1/field", tags=["field"], dependencies=[readers(*READERS, Role.REP)])


class VerifiedShare(BaseModel):
    key: str | None = Field(description="The rep, distributor or region id (empty: a distributor with no region).")
    captures: int
    on_site: int
    off_site: int
    low_accuracy: int
    no_gps: int
    outlet_not_geotagged: int
    mock_location: int
    verified_share: float = Field(description="on_site / captures: the geo-verified share.")


class VerifiedShares(BaseModel):
    by: ShareBy
    days: int
    rows: list[VerifiedShare]


class OffSiteRep(BaseModel):
    rep_id: str
    off_site_orders: int
    orders: int
    last_off_site_at: datetime


class OffSiteAlerts(BaseModel):
    days: int
    threshold: int = Field(description="Off-site orders in the window that raise the alert (settings).")
    reps: list[OffSiteRep]


class SyncDelay(BaseModel):
    key: str
    events: int
    p50_s: float = Field(description="Median recorded_at - occurred_at, in seconds.")
    p95_s: float
    max_s: float


class SyncDelays(BaseModel):
    by: DelayBy
    days: int
    rows: list[SyncDelay]


class DeviceSkew(BaseModel):
    device: str
    rep_id: str = Field(description="The rep of the device's latest batch.")
    batches: int = Field(description="Batches that sent device_time and carried an order or visit.")
    latest_skew_s: float = Field(description="Device clock minus server clock at its latest batch, in seconds.")
    max_abs_skew_s: float
    last_seen_at: datetime
    flagged: bool = Field(description="Its clock was off by more than the threshold (settings) at some batch.")


class ClockSkew(BaseModel):
    days: int
    threshold_s: float
    devices: list[DeviceSkew]


def _since(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@router.get("/geo-verification", response_model=VerifiedShares, operation_id="get_geo_verification")
async def get_geo_verification(
    scope: CallerScope,
    conn: ConnectionDep,
    window: WindowDep,
    by: Annotated[ShareBy, Query(description="Group by rep, distributor or region.")] = "rep",
    subject: Annotated[CheckedEventType | None, Query(description="Only orders, or only visits.")] = None,
    fmt: Format = "json",
) -> VerifiedShares | Response:
    """The geo-verified share (captures judged on_site) of orders and visits, with every verdict's count."""
    if by != "rep":
        # A row above the caller's top level would be a partial figure of a territory it does not own.
        scope.require_level(by, None)
    records = await verified_shares(conn, by, window.since, subject, scope.rep, scope.distributor_list)
    rows = [VerifiedShare(**dict(r), verified_share=round(r["on_site"] / r["captures"], 4)) for r in records]
    if fmt != "json":
        return export_response(VerifiedShare, rows, f"geo-verification-by-{by}", fmt)
    return VerifiedShares(by=by, days=window.days, rows=rows)


@router.get("/off-site-alerts", response_model=OffSiteAlerts, operation_id="get_off_site_alerts")
async def get_off_site_alerts(
    scope: CallerScope, conn: ConnectionDep, settings: SettingsDep, days: Days | None = None, fmt: Format = "json"
) -> OffSiteAlerts | Response:
    """Reps with repeated off-site orders: at least the threshold within the window (both from settings)."""
    window = days or settings.off_site_alert_days
    threshold = settings.off_site_alert_orders
    records = await off_site_reps(conn, _since(window), scope.rep, scope.distributor_list, threshold)
    reps = [OffSiteRep(**dict(r)) for r in records]
    if fmt != "json":
        return export_response(OffSiteRep, reps, "off-site-alerts", fmt)
    return OffSiteAlerts(days=window, threshold=threshold, reps=reps)


@router.get("/sync-delays", response_model=SyncDelays, operation_id="get_sync_delays")
async def get_sync_delays(
    scope: CallerScope,
    conn: ConnectionDep,
    window: WindowDep,
    by: Annotated[DelayBy, Query(description="Group by rep or device.")] = "rep",
    fmt: Format = "json",
) -> SyncDelays | Response:
    """How late orders and visits reach the server (recorded_at - occurred_at): p50 and p95 per rep or device."""
    records = await sync_delays(conn, by, window.since, scope.rep, scope.distributor_list)
    rows = [SyncDelay(**dict(r)) for r in records]
    if fmt != "json":
        return export_response(SyncDelay, rows, f"sync-delays-by-{by}", fmt)
    return SyncDelays(by=by, days=window.days, rows=rows)


@router.get("/clock-skew", response_model=ClockSkew, operation_id="get_clock_skew")
async def get_clock_skew(
    scope: CallerScope, conn: ConnectionDep, settings: SettingsDep, window: WindowDep, fmt: Format = "json"
) -> ClockSkew | Response:
    """Each device's clock against the server's, from the device_time its batches sent (POST /v1/events)."""
    threshold = settings.clock_skew_alert_seconds
    records = await clock_skews(conn, window.since, scope.rep, scope.distributor_list)
    devices = [DeviceSkew(**dict(r), flagged=r["max_abs_skew_s"] > threshold) for r in records]
    if fmt != "json":
        return export_response(DeviceSkew, devices, "clock-skew", fmt)
    return ClockSkew(days=window.days, threshold_s=threshold, devices=devices)


class GeotagProposal(BaseModel):
    outlet_id: str
    distributor_id: str
    subject_event_id: UUID = Field(description="The capture proposing it: post it as proposed_by_event_id.")
    subject_event_type: str
    rep_id: str
    lat: float
    lon: float
    accuracy_m: float
    checked_at: datetime


class GeotagProposals(BaseModel):
    max_accuracy_m: float = Field(description="Only captures at least this accurate propose a geotag (settings).")
    proposals: list[GeotagProposal]


@router.get("/geotag-proposals", response_model=GeotagProposals, operation_id="get_geotag_proposals")
async def get_geotag_proposals(
    scope: CallerScope, conn: ConnectionDep, settings: SettingsDep, fmt: Format = "json"
) -> GeotagProposals | Response:
    """Ungeotagged outlets with the first good-accuracy capture made there: an admin confirms one by posting
    OutletGeotagged with its position (and proposed_by_event_id); the outlet then leaves this list."""
    accuracy = settings.geotag_proposal_max_accuracy_m
    records = await geotag_proposals(conn, accuracy, scope.rep, scope.distributor_list)
    proposals = [GeotagProposal(**dict(r)) for r in records]
    if fmt != "json":
        return export_response(GeotagProposal, proposals, "geotag-proposals", fmt)
    return GeotagProposals(max_accuracy_m=accuracy, proposals=proposals)
