"""One service instance served by several processes (uvicorn workers) sharing its port, for a service whose
requests are CPU-bound Python and so would otherwise use one core at most (order-capture's validation).

Each worker is a whole copy of the service: its own database pool and its own background jobs. That is safe
because the jobs already allow several instances: outbox relays take turns on a per-service advisory lock, and
consumers are members of the service's consumer group. What changes with W workers, as with W instances: up to
W x SELLTHROUGH_DB_POOL_MAX connections and W members in each consumer group. Rate limits do not change: they
are counted in PostgreSQL, shared by every worker (ratelimit.py).

Prometheus metrics are kept in files shared by the workers (prometheus_client's multiprocess mode), so
/metrics answers for the whole instance whichever worker serves the scrape: counters and histograms are summed
over the workers (including workers that exited), and gauges take the most recent value of a live worker.
Multiprocess mode cannot export gauges computed at scrape time: sellthrough_projection_freshness_seconds of
the service's own consumers is left out of /metrics when it runs with workers.
"""

import os
import shutil
import tempfile
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from sellthrough_runtime.logs import configure_logging
from sellthrough_runtime.settings import ServiceSettings

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""Read by prometheus_client when it is imported: set in the supervisor, so every worker it starts inherits it."""


def serve_with_workers(factory: str, service: str, settings: ServiceSettings, workers: int) -> None:
    """Serve the app built by `factory` ("module:function", called without arguments in each worker, which
    reads its settings from the environment as this process did) from `workers` processes, until stopped."""
    configure_logging(service, settings.log_level)
    # One directory per service and port, emptied first: files left by a supervisor that was killed would
    # otherwise add their counts to this run's.
    metrics_dir = Path(tempfile.gettempdir()) / f"sellthrough-{service}-{settings.http_port}-metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ[METRICS_DIR_VARIABLE] = str(metrics_dir)
    try:
        uvicorn.run(
            factory,
            factory=True,
            workers=workers,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess() -> bool:
    return bool(os.environ.get(METRICS_DIR_VARIABLE))


def metrics_exposition() -> bytes:
    """The /metrics body: this process's metrics, or those of every worker of the instance."""
    if not _multiprocess():
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_exiting() -> None:
    """Drop this worker's gauges from /metrics (its counters keep counting in the instance's totals)."""
    if _multiprocess():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
