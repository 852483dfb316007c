"""The forecasting rules of query_api.figures.forecasting: methods, classification, cover, replenishment, anomalies.
Expected values are worked out by hand in the comments."""

import math
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query_api.figures.forecasting import (
    Croston,
    DetectionSettings,
    Method,
    ReplenishmentPolicy,
    SeasonalSes,
    Ses,
    adi,
    classify,
    days_of_cover,
    fit,
    replenishment,
    run,
    safety_stock,
)
from query_api.reads.forecasts import Series, dense_series

units = st.integers(min_value=0, max_value=500)


@pytest.mark.parametrize(
    ("series", "expected_adi", "method"),
    [
        ([0, 0, 0], None, Method.NO_DEMAND),
        ([], None, Method.NO_DEMAND),
        ([5, 5, 5, 5], 1.0, Method.SES),
        ([1, 1, 1, 1, 0], 1.25, Method.SES),  # 5 days / 4 demand days
        ([1, 1, 1, 0], 4 / 3, Method.SBA),  # 1.333 > 1.32
        ([1] * 25 + [0] * 8, 1.32, Method.SES),  # exactly the cut-off is still regular
        ([0, 0, 3, 0, 0, 3], 3.0, Method.SBA),
    ],
)
def test_classification_by_average_demand_interval(
    series: list[int], expected_adi: float | None, method: Method
) -> None:
    assert adi(series) == (None if expected_adi is None else pytest.approx(expected_adi))
    assert classify(series) is method


@pytest.mark.parametrize(
    ("series", "level", "mad"),
    [
        ([10, 20], 12.0, 10.0),  # l = 10 + 0.2 * (20 - 10); one error of 10
        ([4, 6, 5], 4.52, 1.3),  # l: 4 -> 4.4 (error 2) -> 4.52 (error 0.6); MAD (2 + 0.6) / 2
        ([7], 7.0, 0.0),  # one day: the level is that day, no error yet
    ],
)
def test_ses_hand_computed(series: list[int], level: float, mad: float) -> None:
    result = fit(series)
    assert result.method is Method.SES
    assert result.daily == pytest.approx(level)
    assert result.mad == pytest.approx(mad)


@pytest.mark.parametrize(
    ("series", "croston", "sba"),
    [
        # demand 3 every 3rd day: size 3, interval 3 -> 1 unit a day; SBA 1 * (1 - 0.1 / 2)
        ([0, 0, 3, 0, 0, 3, 0, 0, 3], 1.0, 0.95),
        # z starts at 4; the second demand (2, four days later) gives z 4 + 0.1 * (2 - 4) = 3.8 and the first
        # interval, p = 4: rate 3.8 / 4 = 0.95
        ([0, 4, 0, 0, 0, 2], 0.95, 0.95 * 0.95),
        # a single demand: rate = size / days seen (6 / 3), decaying as days pass without demand
        ([6, 0, 0], 2.0, 1.9),
        # intervals 4 then 2: p 4 -> 4 + 0.1 * (2 - 4) = 3.8; z stays 6
        ([6, 0, 0, 0, 6, 0, 6], 6 / 3.8, 6 / 3.8 * 0.95),
        ([0, 0, 0], 0.0, 0.0),
    ],
)
def test_croston_hand_computed(series: list[int], croston: float, sba: float) -> None:
    plain, corrected = Croston(sba=False), Croston()
    for y in series:
        plain.update(y)
        corrected.update(y)
    assert plain.forecast() == pytest.approx(croston)
    assert corrected.forecast() == pytest.approx(sba)


def test_fit_uses_sba_for_intermittent_demand() -> None:
    result = fit([0, 0, 3, 0, 0, 3, 0, 0, 3])
    assert result.method is Method.SBA
    assert result.daily == pytest.approx(0.95)


@given(c=st.integers(min_value=0, max_value=10_000), n=st.integers(min_value=1, max_value=60))
def test_a_constant_series_forecasts_that_constant(c: int, n: int) -> None:
    result = fit([c] * n)
    assert result.daily == pytest.approx(c)
    assert result.mad == 0
    assert result.anomalies == []
    low, high = result.interval()
    assert low == pytest.approx(c)
    assert high == pytest.approx(c)


@given(start=units, c=units, n=st.integers(min_value=0, max_value=80))
def test_ses_converges_geometrically_to_a_new_level(start: int, c: int, n: int) -> None:
    model = Ses()
    model.update(start)
    for _ in range(n):
        model.update(c)
    assert abs(model.forecast() - c) <= abs(start - c) * 0.8**n + 1e-9


@given(size=st.integers(min_value=1, max_value=100), every=st.integers(min_value=2, max_value=10), k=st.integers(1, 8))
def test_croston_on_regular_intermittent_demand_is_size_over_interval(size: int, every: int, k: int) -> None:
    series = ([0] * (every - 1) + [size]) * k
    plain = Croston(sba=False)
    for y in series:
        plain.update(y)
    assert plain.forecast() == pytest.approx(size / every)
    assert fit(series, DetectionSettings(k=1e9)).daily == pytest.approx(size / every * 0.95)


@pytest.mark.parametrize(
    ("daily", "mad", "on_hand", "policy", "expected"),
    [
        (10, 0, 60, ReplenishmentPolicy(), 80),  # 10 x (7 + 7) - 60
        (10, 0, 200, ReplenishmentPolicy(), 0),  # already covered: never negative
        (10, 0, 60, ReplenishmentPolicy(safety_days=3), 110),  # 10 x 17 - 60
        (10, 0, -20, ReplenishmentPolicy(), 160),  # negative book stock must be made good too
        # safety stock 1.65 x 1.25 x 2 x sqrt(14) = 15.434: 140 + 15.434 - 60 = 95.43 -> 96
        (10, 2, 60, ReplenishmentPolicy(), 96),
        (0, 0, 0, ReplenishmentPolicy(), 0),
    ],
)
def test_replenishment_hand_computed(
    daily: float, mad: float, on_hand: int, policy: ReplenishmentPolicy, expected: int
) -> None:
    assert replenishment(daily, mad, on_hand, policy) == expected


def test_safety_stock_formula() -> None:
    assert safety_stock(2, ReplenishmentPolicy()) == pytest.approx(1.65 * 1.25 * 2 * math.sqrt(14))
    assert safety_stock(2, ReplenishmentPolicy(safety_z=0)) == 0


@given(
    daily=st.floats(min_value=0, max_value=1000),
    mad=st.floats(min_value=0, max_value=100),
    on_hand=st.integers(min_value=-1000, max_value=100_000),
    lead=st.integers(min_value=0, max_value=60),
    extra=st.integers(min_value=1, max_value=60),
)
def test_replenishment_is_never_negative_and_grows_with_lead_time(
    daily: float, mad: float, on_hand: int, lead: int, extra: int
) -> None:
    shorter = replenishment(daily, mad, on_hand, ReplenishmentPolicy(lead_time_days=lead))
    longer = replenishment(daily, mad, on_hand, ReplenishmentPolicy(lead_time_days=lead + extra))
    assert 0 <= shorter <= longer


@pytest.mark.parametrize(("on_hand", "daily", "cover"), [(60, 10, 6.0), (0, 5, 0.0), (-10, 5, -2.0), (10, 0, None)])
def test_days_of_cover(on_hand: int, daily: float, cover: float | None) -> None:
    assert days_of_cover(on_hand, daily) == cover


def test_a_surge_is_flagged_and_clipped() -> None:
    # 14 steady days: MAD 0, so the band is 3 x the 1-unit floor. Day 14 (20) is 10 above: a surge; it enters the
    # model as 13, so the level becomes 10 + 0.2 x 3 = 10.6 and MAD (13 x 0 + 3) / 14.
    result = fit([10] * 14 + [20])
    assert [(a.index, a.kind, a.actual, a.expected, a.threshold) for a in result.anomalies] == [
        (14, "surge", 20, 10, 3)
    ]
    assert result.daily == pytest.approx(10.6)
    assert result.mad == pytest.approx(3 / 14)


def test_a_dip_is_flagged() -> None:
    result = fit([10] * 14 + [0])
    assert [(a.index, a.kind, a.deviation) for a in result.anomalies] == [(14, "dip", -10)]
    assert result.daily == pytest.approx(10 - 0.2 * 3)  # entered as 7


@pytest.mark.parametrize(
    ("series", "detection"),
    [
        ([10] * 14 + [13], DetectionSettings()),  # exactly k x MAD away: not beyond it
        ([10] * 13 + [20], DetectionSettings()),  # 13 days of history, 14 needed
        ([10] * 14 + [20], DetectionSettings(k=11)),  # band 11 units
        ([10] * 14 + [20], DetectionSettings(mad_floor=4)),  # band 12 units
        ([10] * 5 + [20], DetectionSettings(min_history=6)),
    ],
)
def test_no_anomaly_within_the_band_or_without_enough_history(series: list[int], detection: DetectionSettings) -> None:
    assert fit(series, detection).anomalies == []


def test_band_uses_mad_of_the_days_before() -> None:
    # alternating 8/12 around a level near 10: errors about 2-4, so MAD > 1 and the band is wider than the floor
    series = [8, 12] * 10
    result = fit([*series, 30])
    (surge,) = result.anomalies
    assert surge.index == 20
    prior = fit(series)
    assert surge.threshold == pytest.approx(3 * prior.mad)
    assert surge.expected == pytest.approx(prior.daily)


@settings(max_examples=150)
@given(
    series=st.lists(st.one_of(st.just(0), units), min_size=1, max_size=60),
    k=st.floats(min_value=1, max_value=6),
    min_history=st.integers(min_value=1, max_value=20),
)
def test_anomalies_are_only_beyond_k_mad_after_min_history(series: list[int], k: float, min_history: int) -> None:
    detection = DetectionSettings(k=k, min_history=min_history)
    result = fit(series, detection)
    for a in result.anomalies:
        assert a.index >= min_history
        assert abs(a.actual - a.expected) > a.threshold >= k * detection.mad_floor
        assert a.kind == ("surge" if a.actual > a.expected else "dip")
        # the band is k x the MAD of the days before, recomputed independently from the prefix
        prefix = fit(series[: a.index], detection, result.method)
        if result.method is Method.SBA:  # intermittent: the size against the usual size, surges only
            assert a.kind == "surge"
            assert a.threshold == pytest.approx(k * max(prefix.size_mad, detection.mad_floor))
            assert a.expected == pytest.approx(prefix.size)
        else:
            assert a.threshold == pytest.approx(k * max(prefix.mad, detection.mad_floor))
            assert a.expected == pytest.approx(prefix.daily)
    assert result.daily >= 0
    assert result.mad >= 0
    low, high = result.interval()
    assert 0 <= low <= result.daily <= high


@pytest.mark.parametrize(("new_level", "last_flagged"), [(15, 23), (30, 40)])
def test_a_lasting_level_shift_stops_being_flagged(new_level: int, last_flagged: int) -> None:
    # Each clipped day moves the level and grows MAD, so the band catches up: a 50% step is accepted after
    # four days, a tripling (a far bigger step against a 1-unit band) after three weeks.
    result = fit([10] * 20 + [new_level] * 60)
    assert [a.index for a in result.anomalies] == list(range(20, last_flagged + 1))
    assert {a.kind for a in result.anomalies} == {"surge"}
    assert result.daily == pytest.approx(new_level, abs=0.01)


def test_seasonal_ses_hand_computed() -> None:
    model = SeasonalSes()
    for y in [10, 10, 10, 10, 10, 10, 3]:
        assert not model.ready()
        model.update(y)
    # level = 63 / 7 = 9; season = y - 9: 1 on six days, -6 on the seventh
    assert (model.level, model.season) == (9, [1, 1, 1, 1, 1, 1, -6])
    assert model.forecast() == 10
    model.update(12)  # level 9 + 0.2 x (12 - 1 - 9) = 9.4; season 1 + 0.1 x (12 - 9.4 - 1) = 1.16
    assert model.level == pytest.approx(9.4)
    assert model.season[0] == pytest.approx(1.16)
    assert model.forecast() == pytest.approx(10.4)  # day 1 of the week
    assert model.forecast(5) == pytest.approx(3.4)  # the seventh day: 9.4 - 6
    assert model.forecast(6) == pytest.approx(10.56)  # day 0 again, with its updated index


WEEK = [10, 9, 10, 11, 13, 16, 0]  # closed on the seventh day


def test_a_weekly_pattern_is_forecast_by_weekday_and_closed_days_are_not_dips() -> None:
    result = fit(WEEK * 4)
    assert result.method is Method.SEASONAL
    assert result.week == pytest.approx(WEEK)
    assert [result.on_day(i) for i in (0, 6, 7, 13)] == [10, 0, 10, 0]
    assert result.daily == pytest.approx(69 / 7)
    assert result.mad == 0
    assert result.anomalies == []
    # plain SES on the same days calls every closed day after the first two weeks a dip: why ses_weekly exists
    assert {(a.index % 7, a.kind) for a in run(WEEK * 4, Method.SES).anomalies} == {(6, "dip")}


def test_a_dip_against_the_weekday_shape_is_flagged() -> None:
    result = fit([*WEEK * 4, 10, 9, 10, 11, 13, 4])  # the sixth day (usually 16) sells 4
    assert result.method is Method.SEASONAL
    assert [(a.index, a.kind, a.expected, a.threshold) for a in result.anomalies] == [(33, "dip", 16, 3)]


@pytest.mark.parametrize(
    ("series", "method"),
    [
        (WEEK * 3 + WEEK[:6], Method.SES),  # 27 days: too few to judge a weekly model
        ([10] * 28, Method.SES),  # no pattern: no gain
        (WEEK * 4, Method.SEASONAL),
    ],
)
def test_weekly_model_only_when_enough_days_and_a_clear_gain(series: list[int], method: Method) -> None:
    assert fit(series).method is method


def test_series_start_at_the_first_sale_and_are_zero_filled_to_the_last_day() -> None:
    d = date(2026, 3, 1)
    rows = [
        {"distributor_id": "D1", "sku_id": "S1", "day": d + timedelta(days=2), "units": 5},
        {"distributor_id": "D1", "sku_id": "S1", "day": d + timedelta(days=4), "units": 7},
        {"distributor_id": "D1", "sku_id": "S2", "day": d, "units": 1, "node_id": "R1"},
    ]
    series = dense_series(rows, d + timedelta(days=5))
    assert series[("D1", "S1")] == Series(d + timedelta(days=2), [5, 0, 7, 0])
    assert series[("D1", "S2")] == Series(d, [1, 0, 0, 0, 0, 0], "R1")
    assert series[("D1", "S1")].day(2) == d + timedelta(days=4)


@given(
    open_days=st.lists(st.integers(min_value=1, max_value=50), min_size=6, max_size=6),
    seventh=st.integers(min_value=0, max_value=50),
    weeks=st.integers(min_value=4, max_value=8),
)
def test_any_repeated_week_is_forecast_exactly(open_days: list[int], seventh: int, weeks: int) -> None:
    week = [*open_days, seventh]
    result = fit(week * weeks)
    assert result.method in (Method.SES, Method.SEASONAL)  # SES only when every day sells the same
    assert [result.on_day(i) for i in range(14)] == pytest.approx(week * 2)
    assert result.anomalies == []


def test_intermittent_demand_is_judged_on_its_size() -> None:
    usual = [0, 0, 0, 4] * 5  # ADI 4; every order is 4 units, far above the daily rate of ~1
    assert fit(usual).anomalies == []
    result = fit([*usual, 0, 0, 0, 20])
    assert result.method is Method.SBA
    # size MAD 0: the band is 3 x the 1-unit floor above the usual size, 4
    assert [(a.index, a.kind, a.expected, a.threshold) for a in result.anomalies] == [(23, "surge", 4, 3)]
    assert result.size == pytest.approx(4 + 0.1 * 3)  # the 20 entered z as 7
    assert fit([*usual, 0, 0, 0, 7]).anomalies == []  # exactly at the band's edge
    # 3 earlier orders are too few (min_demands 4), though the 15 days are enough history
    assert fit([0, 0, 0, 4] * 3 + [0, 0, 20]).anomalies == []
    assert fit([0, 0, 0, 4] * 3 + [0, 0, 20], DetectionSettings(min_demands=3)).anomalies != []
