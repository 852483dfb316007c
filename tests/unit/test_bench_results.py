"""The benchmark's report (bench/results.py): ratios against the same run's baseline, pass/fail against the
issue's targets, and the shape of bench/results.json. The benchmark itself runs with `make bench`."""

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from bench.results import Result, Target, write_results
from bench.stats import percentile

INGEST_TARGET = Target(">= 20,000 lines/s and >= 50% of bare", min_value=20_000, min_ratio=0.5)
QUERY_TARGET = Target("p99 < 50 ms and <= 3x DuckDB", max_value=50, max_ratio=3.0)


def test_a_figure_passes_only_when_every_part_of_its_target_is_met() -> None:
    fast_enough = Result("1 ingest", "lines/s", 25_000, "lines/s", "bare", 40_000, INGEST_TARGET)
    below_ratio = Result("1 ingest", "lines/s", 25_000, "lines/s", "bare", 60_000, INGEST_TARGET)
    below_value = Result("1 ingest", "lines/s", 15_000, "lines/s", "bare", 20_000, INGEST_TARGET)
    assert fast_enough.ratio == 0.625
    assert (fast_enough.passed, below_ratio.passed, below_value.passed) == (True, False, False)


def test_a_target_is_met_only_when_the_runs_correctness_checks_hold() -> None:
    right = Result("5 queries", "p99", 20, "ms", "DuckDB p99", 10, QUERY_TARGET, checks={"totals_agree": True})
    wrong = Result("5 queries", "p99", 20, "ms", "DuckDB p99", 10, QUERY_TARGET, checks={"totals_agree": False})
    assert (right.passed, wrong.passed) == (True, False)
    assert wrong.failed_checks == ["totals_agree"]
    assert wrong.as_json()["checks"] == {"totals_agree": False}


def test_upper_bounds_and_a_missing_baseline() -> None:
    quick = Result("5 queries", "p99", 20, "ms", "DuckDB p99", 10, QUERY_TARGET)
    too_slow_vs_duckdb = Result("5 queries", "p99", 40, "ms", "DuckDB p99", 10, QUERY_TARGET)
    no_baseline = Result("5 queries", "p99", 20, "ms", target=QUERY_TARGET)
    assert (quick.passed, too_slow_vs_duckdb.passed, no_baseline.passed) == (True, False, False)
    assert Result("4 rebuild", "total", 12.5, "s").passed is None


def test_results_json_carries_every_field_machine_and_parameters(tmp_path: Path) -> None:
    results = [
        Result("1 ingest", "lines/s", 25_000, "lines/s", "bare", 40_000, INGEST_TARGET, {"requests": 3}),
        Result("3 freshness", "p99", math.inf, "ms", "GET p99", 30.0, Target("p99 < 1 s", max_value=1000)),
    ]
    path = tmp_path / "results.json"
    write_results(path, results, {"order_lines": 1000}, {"query-api": 120.4}, datetime.now(UTC), [], (1.0, 1.0, 1.0))

    document = json.loads(path.read_text())
    assert document["parameters"] == {"order_lines": 1000}
    assert document["machine"]["cores"] >= 1
    assert document["machine"]["python"].startswith("3.")
    assert document["peak_rss_mib"] == {"query-api": 120.4}
    first, never_seen = document["results"]
    assert {k: first[k] for k in ("name", "value", "unit", "baseline_name", "baseline_value", "ratio", "passed")} == {
        "name": "lines/s",
        "value": 25_000,
        "unit": "lines/s",
        "baseline_name": "bare",
        "baseline_value": 40_000,
        "ratio": 0.625,
        "passed": True,
    }
    assert first["target"]["min_value"] == 20_000
    assert (never_seen["value"], never_seen["passed"]) == (None, False)


def test_nearest_rank_percentiles() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert (percentile(samples, 50), percentile(samples, 99), percentile(samples, 100)) == (50.0, 99.0, 100.0)
    assert percentile([3.0], 99) == 3.0
