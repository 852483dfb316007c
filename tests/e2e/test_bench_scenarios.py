"""The benchmark's field-client and location scenarios (`make bench BENCH_SCENARIOS=field,location`) at a tiny size:
they run against the real stack and report what docs/benchmarks.md says they report. The figures themselves are
not judged here (a busy machine moves them); what each one counted is."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_the_field_and_location_scenarios_run_and_count_what_they_claim(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--scenarios", "field,location", "--field-reps", "6", "--field-days", "3",
         "--field-batch", "10", "--location-events", "300", "--location-rounds", "2", "--bare-seconds", "1",
         "--ingest-clients", "2", "--fast-unsafe", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    document = json.loads(output.read_text())
    assert document["errors"] == []
    field, gps_vs_no_gps, checked_vs_unchecked = document["results"]

    assert field["scenario"] == "6 field client"
    details = field["details"]
    assert details["orders_captured"] > 0
    # Everything the simulator queued on the phones was accepted, through the phones' own batches of 10.
    assert details["events_accepted"] == details["events_queued"] >= details["orders_captured"]
    assert details["lines_accepted"] == details["lines_queued"] > 0
    assert details["events_rejected"] == 0
    assert details["requests"] >= details["events_queued"] / 10
    assert field["value"] > 0
    assert field["ratio"] is not None

    assert gps_vs_no_gps["scenario"] == checked_vs_unchecked["scenario"] == "7 location"
    location = gps_vs_no_gps["details"]
    assert {form: location[form]["events_accepted"] for form in ("gps", "no_gps", "unchecked")} == dict.fromkeys(
        ("gps", "no_gps", "unchecked"), 300
    )
    # What the two ratios mean: an order without GPS is still judged (no_gps) and kept in a LocationChecked; the
    # bench's order-capture without the location check writes none.
    assert location["location_checked_rows_written"] == {"gps": 300, "no_gps": 300, "unchecked": 0}
    assert gps_vs_no_gps["value"] == checked_vs_unchecked["value"] > 0
    assert gps_vs_no_gps["ratio"] is not None
    assert checked_vs_unchecked["ratio"] is not None
