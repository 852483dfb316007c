"""HTTP API: demand forecasts with days of cover and suggested replenishment, and daily demand anomalies, per
distributor x SKU. The rules are in query_api/figures/forecasting.py (pure); this module only reads and shapes.

The history ends yesterday (in the business time zone): today is not over, and its partial sales would look
like a dip and drag the forecast down."""

import asyncio
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from query_api.api.caller import READERS, CallerScope, readers
from query_api.api.exports import Format, export_response
from query_api.api.params import Limit, ParentId, PeriodDep, Sku, today_in
from query_api.figures.forecasting import (
    Anomaly,
    DetectionSettings,
    Method,
    ReplenishmentPolicy,
    days_of_cover,
    fit,
    replenishment,
    safety_stock,
)
from query_api.reads.forecasts import (
    Key,
    Series,
    distributor_name,
    distributor_names,
    distributor_units,
    on_hand,
    scoped_units,
    sku_names,
)
from query_api.reads.stock import STOCK_PARENT, StockLevel, parent_known
from sellthrough_contracts.common import ID_PATTERN
from sellthrough_runtime.costly_reads import costly_read
from sellthrough_runtime.dependencies import ConnectionDep, ContextDep, SettingsDep
from sellthrough_runtime.problems import ProblemError

# Narrowed to the caller's scope (api/caller.py); closed to reps.
router = APIRouter(prefix="/v1", dependencies=[readers(*READERS)])

HistoryDays = Annotated[
    int, Query(ge=14, le=366, description="Days of secondary sales the model learns from, ending yesterday.")
]
K = Annotated[float, Query(ge=1, le=10, description="A day is a dip or surge beyond forecast +/- k x MAD.")]
MinHistory = Annotated[
    int, Query(ge=2, le=180, description="Days of history a distributor x SKU needs before its days are judged.")
]


class DayForecast(BaseModel):
    day: date
    units: float = Field(description="Forecast secondary units that day.")
    low: float = Field(description="Lower end of the ~95% interval: units - 1.96 x 1.25 x MAD, at least 0.")
    high: float = Field(description="Upper end of the ~95% interval: units + 1.96 x 1.25 x MAD.")


class ForecastRow(BaseModel):
    sku_id: str
    sku_name: str | None
    method: Method = Field(
        description="ses: regular demand (ADI <= 1.32); ses_weekly: regular demand with a weekday pattern "
        "(additive Holt-Winters, 7-day season); croston_sba: intermittent demand (ADI > 1.32); "
        "no_demand: no sales in the history."
    )
    adi: float | None = Field(description="Average demand interval: history days / days with sales.")
    history_days: int = Field(description="Days in the series: from the first day with sales to yesterday.")
    daily_forecast: float = Field(
        description="Forecast units per day (ses_weekly: the mean over the next 7 days); used for cover and orders."
    )
    mad: float = Field(description="Mean absolute one-step-ahead error over the history, in units per day.")
    forecast: list[DayForecast]
    horizon_units: float = Field(description="Forecast units over the whole horizon.")
    on_hand: int | None = Field(
        description="Book stock from the stock ledger; null when it has no position (then taken as 0)."
    )
    days_of_cover: float | None = Field(description="on_hand / daily_forecast; null without forecast demand.")
    safety_stock: float = Field(description="safety_z x 1.25 x MAD x sqrt(lead time + review days).")
    suggested_order: int = Field(
        description="max(0, ceil(daily_forecast x (lead time + review + safety days) + safety_stock - on_hand))."
    )


class Policy(BaseModel):
    lead_time_days: int
    review_days: int
    safety_days: int
    safety_z: float


class ForecastResponse(BaseModel):
    distributor_id: str
    distributor_name: str | None
    history_from: date
    history_to: date = Field(description="Yesterday: today's sales are still coming in.")
    horizon_days: int
    policy: Policy
    rows: list[ForecastRow]


class AnomalyRow(BaseModel):
    node_id: str | None = Field(description="The row's node at `level` (for level=sku, the SKU).")
    distributor_id: str
    distributor_name: str | None
    sku_id: str
    sku_name: str | None
    day: date
    kind: str = Field(description="surge (above the band) or dip (below it).")
    units: int = Field(description="Secondary units sold that day.")
    expected: float = Field(
        description="One-step-ahead forecast for that day from the days before; for croston_sba (intermittent "
        "demand, judged on order size) the usual demand size on a day with demand."
    )
    deviation: float = Field(description="units - expected.")
    threshold: float = Field(
        description="k x max(MAD, 1 unit): the band's half-width that day (croston_sba: MAD of demand sizes)."
    )
    method: Method


class AnomaliesResponse(BaseModel):
    level: StockLevel
    parent_id: str | None
    date_from: date
    date_to: date
    k: float
    rows: list[AnomalyRow] = Field(description="Newest first, then the largest deviation against its band.")


@router.get("/forecasts", response_model=ForecastResponse, operation_id="get_forecasts", tags=["forecasts"])
async def get_forecasts(
    scope: CallerScope,
    settings: SettingsDep,
    conn: ConnectionDep,
    distributor_id: Annotated[str, Query(pattern=ID_PATTERN, description="The distributor forecast.")],
    sku_id: Sku = None,
    horizon_days: Annotated[int, Query(ge=1, le=90, description="Days forecast, from today.")] = 14,
    history_days: HistoryDays = 56,
    lead_time_days: Annotated[int, Query(ge=0, le=180, description="Days from order to stock on hand.")] = 7,
    review_days: Annotated[int, Query(ge=0, le=90, description="Days until the next order is placed.")] = 7,
    safety_days: Annotated[int, Query(ge=0, le=90, description="Extra days of forecast demand held.")] = 0,
    safety_z: Annotated[
        float, Query(ge=0, le=4, description="Service factor of the safety stock (1.65: ~95% cycle service).")
    ] = 1.65,
) -> ForecastResponse:
    """Daily secondary demand forecast per SKU of one distributor, with days of cover against the ledger's book
    stock and a suggested order. Method by demand pattern: SES or Croston-SBA (see query_api/figures/forecasting.py)."""
    scope.require_distributor(distributor_id)
    today = today_in(settings.zone)
    history_to = today - timedelta(days=1)
    history_from = today - timedelta(days=history_days)
    policy = ReplenishmentPolicy(lead_time_days, review_days, safety_days, safety_z)
    name = await distributor_name(conn, distributor_id)
    if name is None:
        raise ProblemError(404, "unknown-distributor", f"No distributor '{distributor_id}' is known.")
    series = await distributor_units(conn, distributor_id, sku_id, history_from, history_to)
    stock = await on_hand(conn, distributor_id, sku_id)
    # SKUs with stock but no sales in the history are listed too: no demand, the worst overstock.
    skus = sorted({sku for _, sku in series} | set(stock))
    names = await sku_names(conn, skus)

    rows = []
    for sku in skus:
        s = series.get((distributor_id, sku))
        result = fit(s.units if s else [])
        stock_units = stock.get(sku)
        rows.append(
            ForecastRow(
                sku_id=sku,
                sku_name=names.get(sku),
                method=result.method,
                adi=None if result.adi is None else round(result.adi, 4),
                history_days=len(s.units) if s else 0,
                daily_forecast=round(result.daily, 4),
                mad=round(result.mad, 4),
                forecast=[
                    _day(today + timedelta(days=i), result.on_day(i), result.band(result.on_day(i)))
                    for i in range(horizon_days)
                ],
                horizon_units=round(sum(result.on_day(i) for i in range(horizon_days)), 4),
                on_hand=stock_units,
                days_of_cover=_rounded(days_of_cover(stock_units or 0, result.daily)),
                safety_stock=round(safety_stock(result.mad, policy), 4),
                suggested_order=replenishment(result.daily, result.mad, stock_units or 0, policy),
            )
        )
    return ForecastResponse(
        distributor_id=distributor_id,
        distributor_name=name,
        history_from=history_from,
        history_to=history_to,
        horizon_days=horizon_days,
        policy=Policy(
            lead_time_days=lead_time_days, review_days=review_days, safety_days=safety_days, safety_z=safety_z
        ),
        rows=rows,
    )


@router.get("/anomalies", response_model=AnomaliesResponse, operation_id="get_anomalies", tags=["forecasts"])
@costly_read("anomalies")
async def get_anomalies(
    scope: CallerScope,
    context: ContextDep,
    period: PeriodDep,
    level: Annotated[
        StockLevel,
        Query(
            description="Like /v1/stock: parent_id is a zone for region, a region for distributor, "
            "a distributor for sku; national and zone take none."
        ),
    ] = StockLevel.NATIONAL,
    parent_id: ParentId = None,
    sku_id: Sku = None,
    k: K = 3.0,
    min_history: MinHistory = 14,
    history_days: HistoryDays = 56,
    limit: Limit = 500,
    fmt: Format = "json",
) -> AnomaliesResponse | Response:
    """Days whose secondary units per distributor x SKU fell outside the one-step forecast +/- k x MAD (dips
    and surges); for intermittent demand, days whose order size exceeded the usual size + k x size MAD.
    Each day is judged against the days before it, including up to `history_days` before `from`.
    Today is never judged (it is not over), so `to` is at most yesterday."""
    date_from = period.date_from
    date_to = min(period.date_to, today_in(context.settings.zone) - timedelta(days=1))
    if parent_id is not None and level not in STOCK_PARENT:
        raise ProblemError(422, "invalid-parent", f"Level '{level}' takes no parent_id.")
    scope.require_level(level, parent_id)
    detection = DetectionSettings(k=k, min_history=min_history)
    async with context.pool.acquire() as conn:
        if parent_id is not None and not await parent_known(conn, level, parent_id):
            raise ProblemError(404, "unknown-parent", f"No {STOCK_PARENT[level]} '{parent_id}' is known.")
        series = (
            await scoped_units(conn, level, parent_id, sku_id, date_from - timedelta(days=history_days), date_to)
            if date_from <= date_to
            else {}
        )
    series = {key: s for key, s in series.items() if scope.holds_distributor(key[0])}
    # Thousands of series at national level take seconds of CPU: off the event loop, and with no connection held.
    found = (await asyncio.to_thread(_judge, series, detection, date_from, date_to))[:limit]
    async with context.pool.acquire() as conn:
        distributors = await distributor_names(conn, [f[0] for f in found])
        skus = await sku_names(conn, [f[1] for f in found])
    response = AnomaliesResponse(
        level=level,
        parent_id=parent_id,
        date_from=date_from,
        date_to=date_to,
        k=k,
        rows=[
            AnomalyRow(
                node_id=s.node_id,
                distributor_id=distributor,
                distributor_name=distributors.get(distributor),
                sku_id=sku,
                sku_name=skus.get(sku),
                day=s.day(a.index),
                kind=a.kind,
                units=int(a.actual),
                expected=round(a.expected, 4),
                deviation=round(a.deviation, 4),
                threshold=round(a.threshold, 4),
                method=method,
            )
            for distributor, sku, s, method, a in found
        ],
    )
    if fmt != "json":
        return export_response(AnomalyRow, response.rows, "anomalies", fmt)
    return response


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


Found = tuple[str, str, Series, Method, Anomaly]


def _judge(series: dict[Key, Series], detection: DetectionSettings, date_from: date, date_to: date) -> list[Found]:
    """Every anomaly in [date_from, date_to], each day judged against the days before it; newest first, then
    the most extreme against its own band."""
    found = []
    for (distributor, sku), s in series.items():
        result = fit(s.units, detection)
        for a in result.anomalies:
            if date_from <= s.day(a.index) <= date_to:
                found.append((distributor, sku, s, result.method, a))
    found.sort(key=lambda f: (-f[2].day(f[4].index).toordinal(), -abs(f[4].deviation) / f[4].threshold))
    return found


def _day(day: date, units: float, band: tuple[float, float]) -> DayForecast:
    return DayForecast(day=day, units=round(units, 4), low=round(band[0], 4), high=round(band[1], 4))
