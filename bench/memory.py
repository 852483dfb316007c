"""Peak resident memory of the processes under test, sampled in a background thread."""

import threading
from types import TracebackType

import psutil


class PeakMemory:
    """Samples the RSS of each watched process (and its children) every `interval` seconds; keeps the peak.
    A process can be watched under a name for part of the run (`watch`/`unwatch`); peaks are kept."""

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._watched: dict[str, psutil.Process] = {}
        self._peaks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._watched[name] = psutil.Process(pid)
        self._sample()

    def unwatch(self, name: str) -> None:
        self._sample()
        with self._lock:
            self._watched.pop(name, None)

    def peaks_mib(self) -> dict[str, float]:
        with self._lock:
            return {name: rss / 2**20 for name, rss in self._peaks.items()}

    def _sample(self) -> None:
        with self._lock:
            watched = list(self._watched.items())
        for name, process in watched:
            try:
                rss = process.memory_info().rss + sum(
                    child.memory_info().rss for child in process.children(recursive=True)
                )
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            with self._lock:
                self._peaks[name] = max(self._peaks.get(name, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
