"""Result entries, the machine they were measured on, bench/results.json and the printed table."""

import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Target:
    """What the issue asks for: `value` compared with `direction`, and/or a minimum/maximum ratio."""

    description: str
    min_value: float | None = None
    max_value: float | None = None
    min_ratio: float | None = None
    max_ratio: float | None = None

    def met(self, value: float, ratio: float | None) -> bool:
        checks = []
        if self.min_value is not None:
            checks.append(value >= self.min_value)
        if self.max_value is not None:
            checks.append(value < self.max_value)
        if self.min_ratio is not None:
            checks.append(ratio is not None and ratio >= self.min_ratio)
        if self.max_ratio is not None:
            checks.append(ratio is not None and ratio <= self.max_ratio)
        return all(checks)


@dataclass(frozen=True)
class Result:
    scenario: str
    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline_value: float | None = None
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    """Correctness of the run behind the figure (projection exact, totals agree, no failed POST): a target counts
    as met only when every check holds, since a fast wrong answer meets nothing."""

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.met(self.value, self.ratio) and all(self.checks.values())

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, held in self.checks.items() if not held]

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "name": self.name,
            "value": _finite(self.value),
            "unit": self.unit,
            "baseline_name": self.baseline_name,
            "baseline_value": _finite(self.baseline_value),
            "ratio": _finite(self.ratio),
            "target": None if self.target is None else asdict(self.target),
            "passed": self.passed,
            "checks": self.checks,
            "details": self.details,
        }


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: a figure never reached (e.g. a latency never observed) is written as null."""
    return None if value is None or not math.isfinite(value) else round(value, 4)


def machine_info() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def write_results(
    path: Path,
    results: list[Result],
    parameters: dict[str, Any],
    memory: dict[str, float],
    started_at: datetime,
    errors: list[str],
    load_at_start: tuple[float, float, float] | None = None,
) -> dict[str, Any]:
    document = {
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        # Other work on the machine (1-, 5-, 15-minute load averages) skews every figure: kept with them.
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "parameters": parameters,
        "results": [r.as_json() for r in results],
        "peak_rss_mib": {name: round(mib, 1) for name, mib in memory.items()},
        "errors": errors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return document


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def print_table(results: list[Result], memory: dict[str, float], console: Console | None = None) -> None:
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title="Sellthrough benchmarks")
    for column in ("scenario", "figure", "value", "baseline", "ratio", "target", "met"):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for r in results:
        baseline = "-" if r.baseline_name is None else f"{r.baseline_name}: {_number(r.baseline_value)}"
        met = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: ""}[r.passed]
        if r.failed_checks:
            met += f" [red](wrong: {', '.join(r.failed_checks)})[/red]"
        table.add_row(
            r.scenario,
            r.name,
            f"{_number(r.value)} {r.unit}",
            baseline,
            _number(r.ratio),
            r.target.description if r.target else "",
            met,
        )
    console.print(table)
    if memory:
        peaks = Table(title="Peak resident memory")
        peaks.add_column("process")
        peaks.add_column("MiB", justify="right")
        for name, mib in memory.items():
            peaks.add_row(name, f"{mib:.0f}")
        console.print(peaks)
