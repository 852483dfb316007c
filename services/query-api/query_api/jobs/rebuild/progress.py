"""How far a rebuild got: a rich progress bar (records of total, rate, ETA) on a terminal, a log line every few
seconds otherwise (a Kubernetes job, CI)."""

import logging
import sys
import time
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 5.0


class RebuildProgress:
    def __init__(self, total: int, *, terminal: bool | None = None) -> None:
        self.total = total
        self.done = 0
        self._started = time.monotonic()
        self._logged = self._started
        self._bar: Progress | None = None
        if sys.stderr.isatty() if terminal is None else terminal:
            self._bar = Progress(
                TextColumn("rebuild"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]:>9,.0f} records/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._task = self._bar.add_task("rebuild", total=total, rate=0.0)

    def __enter__(self) -> "RebuildProgress":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._log()

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self._started, 1e-9)

    def advance(self, records: int) -> None:
        self.done += records
        # The watermarks the total was taken from can sit below the real ends (Tansu), or records keep arriving.
        self.total = max(self.total, self.done)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total, rate=self.rate)
        elif time.monotonic() - self._logged >= LOG_EVERY_SECONDS:
            self._log()

    def _log(self) -> None:
        self._logged = time.monotonic()
        rate = self.rate
        log.info(
            "rebuild progress",
            extra={
                "records": self.done,
                "total": self.total,
                "records_per_s": round(rate),
                "eta_s": round((self.total - self.done) / rate) if rate > 0 else None,
            },
        )
