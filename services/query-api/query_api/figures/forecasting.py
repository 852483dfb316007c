"""Daily secondary-demand forecasts, days of cover, replenishment and anomalies per distributor x SKU. Pure: no I/O.

Input is one distributor x SKU's daily secondary units, oldest first, one value per calendar day (zero on days
without sales). The method (Syntetos-Boylan classification; SES, weekly Holt-Winters or Croston-SBA; MAD bands;
clipped anomalies; cover and suggested orders) and why each constant has its value: docs/forecasting.md."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

ADI_CUTOFF = 1.32
SES_ALPHA = 0.2
CROSTON_ALPHA = 0.1
SEASON = 7
SEASON_GAMMA = 0.1
SEASONAL_MIN_DAYS = 28
SEASONAL_GAIN = 0.2
SIGMA_PER_MAD = 1.25  # sigma / MAD for normally distributed errors (sqrt(pi / 2) ~= 1.2533)


class Method(StrEnum):
    SES = "ses"
    SEASONAL = "ses_weekly"
    SBA = "croston_sba"
    NO_DEMAND = "no_demand"


def adi(series: Sequence[float]) -> float | None:
    """Average demand interval: days per day with demand; None when there is no demand at all."""
    demand_days = sum(1 for y in series if y > 0)
    return len(series) / demand_days if demand_days else None


def classify(series: Sequence[float]) -> Method:
    interval = adi(series)
    if interval is None:
        return Method.NO_DEMAND
    return Method.SBA if interval > ADI_CUTOFF else Method.SES


class OneStepModel(Protocol):
    def ready(self) -> bool:
        """Whether forecast() is a real forecast yet (else the days seen only initialise the model)."""

    def forecast(self, ahead: int = 0) -> float:
        """Forecast for the day `ahead` days after the next one, given the days seen so far."""

    def update(self, y: float) -> None:
        """Take in the next day's demand."""


@dataclass
class Ses:
    alpha: float = SES_ALPHA
    level: float | None = None

    def ready(self) -> bool:
        return self.level is not None

    def forecast(self, ahead: int = 0) -> float:
        return 0.0 if self.level is None else self.level

    def update(self, y: float) -> None:
        self.level = y if self.level is None else self.level + self.alpha * (y - self.level)


@dataclass
class SeasonalSes:
    """Additive Holt-Winters without trend, season of 7 days."""

    alpha: float = SES_ALPHA
    gamma: float = SEASON_GAMMA
    first_week: list[float] = field(default_factory=list)
    level: float = 0.0
    season: list[float] = field(default_factory=list)
    days_seen: int = 0

    def ready(self) -> bool:
        return bool(self.season)

    def forecast(self, ahead: int = 0) -> float:
        if not self.season:
            return sum(self.first_week) / len(self.first_week) if self.first_week else 0.0
        return max(0.0, self.level + self.season[(self.days_seen + ahead) % SEASON])

    def update(self, y: float) -> None:
        d = self.days_seen % SEASON
        self.days_seen += 1
        if not self.season:
            self.first_week.append(y)
            if len(self.first_week) == SEASON:
                self.level = sum(self.first_week) / SEASON
                self.season = [v - self.level for v in self.first_week]
            return
        self.level += self.alpha * (y - self.season[d] - self.level)
        self.season[d] += self.gamma * (y - self.level - self.season[d])


@dataclass
class Croston:
    """Croston's method; ``sba=True`` applies the Syntetos-Boylan (1 - alpha / 2) bias correction."""

    alpha: float = CROSTON_ALPHA
    sba: bool = True
    size: float | None = None
    interval: float | None = None
    days_seen: int = 0
    days_since_demand: int = 0

    def ready(self) -> bool:
        return self.days_seen > 0

    def forecast(self, ahead: int = 0) -> float:
        if self.size is None:
            return 0.0
        rate = self.size / (self.interval if self.interval is not None else self.days_seen)
        return rate * (1 - self.alpha / 2) if self.sba else rate

    def update(self, y: float) -> None:
        self.days_seen += 1
        self.days_since_demand += 1
        if y <= 0:
            return
        q = self.days_since_demand
        if self.size is None:
            self.size = y
        else:
            self.size += self.alpha * (y - self.size)
            self.interval = float(q) if self.interval is None else self.interval + self.alpha * (q - self.interval)
        self.days_since_demand = 0


def model_for(method: Method) -> OneStepModel:
    if method is Method.SES:
        return Ses()
    if method is Method.SEASONAL:
        return SeasonalSes()
    return Croston()  # no demand: never updated by a positive day, so it forecasts zero


@dataclass(frozen=True)
class DetectionSettings:
    k: float = 3.0
    min_history: int = 14
    mad_floor: float = 1.0
    min_demands: int = 4  # intermittent demand: earlier demand days needed before a size is judged


@dataclass(frozen=True)
class Anomaly:
    index: int  # position of the day in the series
    kind: str  # "surge" or "dip"
    actual: float
    expected: float
    threshold: float  # k * max(MAD, mad_floor) at that day (intermittent demand: of the size MAD)

    @property
    def deviation(self) -> float:
        return self.actual - self.expected


@dataclass(frozen=True)
class Fit:
    method: Method
    adi: float | None
    daily: float  # forecast daily demand (for ses_weekly: the mean over the next 7 days)
    mad: float  # mean absolute one-step-ahead error (0 with fewer than two days)
    anomalies: list[Anomaly]
    week: tuple[float, ...] = ()  # forecasts for the next 7 days; day i of a horizon is week[i % 7]
    size: float | None = None  # intermittent demand: the smoothed demand size z
    size_mad: float = 0.0  # intermittent demand: mean |size - z| over demand days after the first
    errors: tuple[tuple[int, float], ...] = ()  # (day index, absolute one-step error, after clipping)

    def on_day(self, ahead: int) -> float:
        """Forecast for the day `ahead` days after the last day of the history (0: the next day)."""
        return self.week[ahead % SEASON] if self.week else self.daily

    def mad_from(self, index: int) -> float:
        tail = [e for t, e in self.errors if t >= index]
        return sum(tail) / len(tail) if tail else 0.0

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """Daily prediction interval: forecast +/- z * 1.25 * MAD, never below zero."""
        return self.band(self.daily, z)

    def band(self, forecast: float, z: float = 1.96) -> tuple[float, float]:
        half = z * SIGMA_PER_MAD * self.mad
        return max(0.0, forecast - half), forecast + half


def fit(
    series: Sequence[float], settings: DetectionSettings = DetectionSettings(), method: Method | None = None
) -> Fit:
    """Fit the method given, or choose one: classify() by ADI, and for regular demand SES or ses_weekly,
    whichever the rule in the module docstring prefers."""
    if method is not None:
        return run(series, method, settings)
    method = classify(series)
    plain = run(series, method, settings)
    if method is not Method.SES or len(series) < SEASONAL_MIN_DAYS:
        return plain
    seasonal = run(series, Method.SEASONAL, settings)
    if seasonal.mad_from(SEASON) < (1 - SEASONAL_GAIN) * plain.mad_from(SEASON):
        return seasonal
    return plain


def run(series: Sequence[float], method: Method, settings: DetectionSettings = DetectionSettings()) -> Fit:
    """Run one method over the series a day at a time, flagging anomalies and clipping them (see above)."""
    model = model_for(method)
    errors: list[tuple[int, float]] = []
    total = 0.0  # running sums: MAD is needed every day
    size_errors, size_total = 0, 0.0
    anomalies: list[Anomaly] = []
    for t, y in enumerate(series):
        if not model.ready():
            model.update(y)  # initialising days (SES: the first; ses_weekly: the first week) are not forecasts
            continue
        expected = model.forecast()
        if isinstance(model, Croston):
            if y > 0 and model.size is not None:
                size_mad = size_total / size_errors if size_errors else 0.0
                threshold = settings.k * max(size_mad, settings.mad_floor)
                judged = t >= settings.min_history and size_errors + 1 >= settings.min_demands
                if judged and y - model.size > threshold:
                    anomalies.append(Anomaly(t, "surge", y, model.size, threshold))
                    y = model.size + threshold
                size_errors, size_total = size_errors + 1, size_total + abs(y - model.size)
        else:
            mad = total / len(errors) if errors else 0.0
            threshold = settings.k * max(mad, settings.mad_floor)
            deviation = y - expected
            if t >= settings.min_history and abs(deviation) > threshold:
                kind = "surge" if deviation > 0 else "dip"
                anomalies.append(Anomaly(t, kind, y, expected, threshold))
                y = max(0.0, expected + math.copysign(threshold, deviation))
        errors.append((t, abs(y - expected)))
        total += abs(y - expected)
        model.update(y)
    mad = total / len(errors) if errors else 0.0
    week = tuple(model.forecast(i) for i in range(SEASON))
    size_mad = size_total / size_errors if size_errors else 0.0
    size = model.size if isinstance(model, Croston) else None
    return Fit(method, adi(series), sum(week) / SEASON, mad, anomalies, week, size, size_mad, tuple(errors))


@dataclass(frozen=True)
class ReplenishmentPolicy:
    lead_time_days: float = 7
    review_days: float = 7
    safety_days: float = 0
    safety_z: float = 1.65


def days_of_cover(on_hand: float, daily: float) -> float | None:
    return on_hand / daily if daily > 0 else None


def safety_stock(mad: float, policy: ReplenishmentPolicy) -> float:
    return policy.safety_z * SIGMA_PER_MAD * mad * math.sqrt(policy.lead_time_days + policy.review_days)


def replenishment(daily: float, mad: float, on_hand: float, policy: ReplenishmentPolicy) -> int:
    """Units to order now: demand until the order after this one can arrive, plus safety stock, minus stock."""
    cover_days = policy.lead_time_days + policy.review_days + policy.safety_days
    need = daily * cover_days + safety_stock(mad, policy) - on_hand
    # round() first: float noise such as 80.00000000001 must not order a unit more
    return max(0, math.ceil(round(need, 6)))
