"""`python -m bench` (what `make bench` runs): every scenario, bench/results.json and a table."""

import asyncio
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from bench.data import BRAND_OUTLETS
from bench.field_load import FieldParams
from bench.freshness import FreshnessParams
from bench.ingest import IngestParams
from bench.location import LocationParams
from bench.results import print_table, write_results
from bench.runner import SCENARIOS, BenchParams, run_all
from bench.scaleout import ScaleoutParams
from bench.wrk_load import MISSING as MISSING_WRK
from sellthrough_contracts.topics import TRADE

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    order_lines: int = typer.Option(
        1_000_000, envvar="BENCH_ORDER_LINES", min=1000, help="Order lines generated for rebuild and queries."
    ),
    ingest_events: int = typer.Option(150_000, envvar="BENCH_INGEST_EVENTS", help="Events posted in the ingest run."),
    ingest_clients: int = typer.Option(
        8, envvar="BENCH_INGEST_CLIENTS", help="wrk connections for ingest; clients of field, location."
    ),
    ingest_seconds: float = typer.Option(
        300, help="Longest ingest run of each endpoint (it ends when every body is answered); unanswered ones fail."
    ),
    bare_seconds: float = typer.Option(15, help="Length of the field scenario's bare-endpoint run."),
    batch: int = typer.Option(100, help="Events per POST."),
    pipeline_events: int = typer.Option(50_000, envvar="BENCH_PIPELINE_EVENTS", help="Events through the pipeline."),
    freshness_rate: int = typer.Option(5000, envvar="BENCH_FRESHNESS_RATE", help="Events/s posted for freshness."),
    freshness_seconds: float = typer.Option(20, envvar="BENCH_FRESHNESS_SECONDS", help="Length of the freshness run."),
    freshness_step_seconds: float = typer.Option(10, help="Length of each step up to the highest sustained rate."),
    freshness_max_steps: int = typer.Option(6, min=0, help="Most steps (x1.5 each) looking for the highest rate."),
    query_rounds: int = typer.Option(25, envvar="BENCH_QUERY_ROUNDS", help="Rounds of the six drill-down queries."),
    query_seconds: float = typer.Option(240, help="Time budget of the query rounds (they stop early past it)."),
    query_lines: int = typer.Option(
        0,
        envvar="BENCH_QUERY_LINES",
        help="Queries over this many lines loaded through the bulk path (bench/query_data.py); 0: the rebuild's.",
    ),
    field_reps: int = typer.Option(100, envvar="BENCH_FIELD_REPS", min=1, help="Field client: simulated reps."),
    field_days: int = typer.Option(
        30, envvar="BENCH_FIELD_DAYS", min=1, max=44, help="Field client: days each rep's phone holds."
    ),
    field_batch: int = typer.Option(100, envvar="BENCH_FIELD_BATCH", help="Field client: events per request."),
    location_events: int = typer.Option(
        30_000, envvar="BENCH_LOCATION_EVENTS", help="Location: orders posted in each of the three forms."
    ),
    location_rounds: int = typer.Option(3, min=1, help="Location: interleaved rounds the orders are split into."),
    scaleout_events: int = typer.Option(
        20_000, envvar="BENCH_SCALEOUT_EVENTS", help="Scale-out: events through the pipeline in each run."
    ),
    scaleout_members: str = typer.Option(
        "1,3", envvar="BENCH_SCALEOUT_MEMBERS", help="Scale-out: query-api processes of each run, comma-separated."
    ),
    scaleout_partitions: int = typer.Option(
        TRADE.partitions, envvar="BENCH_SCALEOUT_PARTITIONS", min=1, help="Scale-out: the trade topic's partitions."
    ),
    scenarios: str = typer.Option(
        ",".join(SCENARIOS), envvar="BENCH_SCENARIOS", help="Comma-separated subset of: " + ", ".join(SCENARIOS)
    ),
    fast_unsafe: bool = typer.Option(False, help="Embedded Postgres without fsync (the tests' setting)."),
    seed: int = typer.Option(7),
    outlets: int = typer.Option(BRAND_OUTLETS, min=100, help="The brand's outlets (every stack's reference data)."),
    output: Path = typer.Option(Path("bench/results.json"), help="Where the results are written."),
) -> None:
    chosen = tuple(s.strip() for s in scenarios.split(",") if s.strip())
    if unknown := set(chosen) - set(SCENARIOS):
        raise typer.BadParameter(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if "ingest" in chosen and shutil.which("wrk") is None:
        raise typer.BadParameter(MISSING_WRK)
    params = BenchParams(
        order_lines=order_lines,
        ingest=IngestParams(ingest_events, batch, ingest_clients, ingest_seconds, bare_seconds),
        pipeline_events=pipeline_events,
        freshness=FreshnessParams(
            freshness_rate, freshness_seconds, batch, step_seconds=freshness_step_seconds, max_steps=freshness_max_steps
        ),
        query_requests=query_rounds,
        field=FieldParams(field_reps, field_days, field_batch, ingest_clients, bare_seconds),
        location=LocationParams(location_events, location_rounds, batch, ingest_clients),
        scaleout=ScaleoutParams(
            scaleout_events, tuple(int(m) for m in scaleout_members.split(",")), scaleout_partitions
        ),
        query_seconds=query_seconds,
        query_lines=query_lines,
        fast_unsafe=fast_unsafe,
        seed=seed,
        outlets=outlets,
        scenarios=chosen,
    )
    console = Console(width=None if sys.stdout.isatty() else 200)
    started, load = datetime.now(UTC), os.getloadavg()
    run = asyncio.run(run_all(params, console))
    write_results(output, run.results, params.as_json(), run.memory, started, run.errors, load)
    print_table(run.results, run.memory, console)
    console.print(f"results written to {output}")
    if run.errors:
        console.print(f"[red]{len(run.errors)} scenario(s) failed; see 'errors' in {output} and bench/logs/")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
