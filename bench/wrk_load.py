"""Closed-loop HTTP load from Debian's wrk (compiled: the generator costs the machine little next to the server it
measures, where httpx cost more CPU per POST than order-capture). The bodies are written to one file per wrk thread
and bench/wrk/bodies.lua posts each exactly once, so every event id is new; wrk stops when they are all answered."""

import asyncio
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.http_load import Body

SCRIPT = Path(__file__).parent / "wrk" / "bodies.lua"
MISSING = (
    "wrk is not installed: the ingest scenario's load generator is Debian's wrk "
    "(`apt-get install -y wrk`; .ci/run installs it as root)"
)


@dataclass(frozen=True)
class WrkReport:
    seconds: float
    posts_sent: int
    posts_answered: int
    posts_ok: int
    events_accepted: int
    failed_posts: int
    first_failure: str
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def failures(self) -> int:
        """Failed POSTs and requests lost on the socket (timeouts, resets): either means a POST not accepted."""
        return self.failed_posts + sum(self.socket_errors.values()) + (self.posts_sent - self.posts_answered)

    def as_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "posts_sent": self.posts_sent,
            "posts_ok": self.posts_ok,
            "events_accepted_in_answers": self.events_accepted,
            "failed_posts": self.failed_posts,
            "first_failure": self.first_failure,
            "socket_errors": self.socket_errors,
            "request_latency_ms": self.latency_ms,
        }


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError(MISSING)
    return path


def _write_slices(directory: Path, bodies: Sequence[Body], threads: int) -> None:
    """Body i goes to thread i % threads: each thread's share is as large as the others' (within one body)."""
    files = [(directory / f"bodies-{t + 1}.txt").open("wb") for t in range(threads)]
    try:
        for i, body in enumerate(bodies):
            if b"\n" in body.content:
                raise ValueError("a request body must be one line (orjson writes none)")
            files[i % threads].write(b"%d\t%s\n" % (body.events, body.content))
    finally:
        for file in files:
            file.close()


async def post_once(
    base_url: str, authorization: str, bodies: Sequence[Body], *, connections: int, max_seconds: float
) -> WrkReport:
    """Each body POSTed once to base_url/v1/events over `connections` keep-alive connections (at most
    `max_seconds`: a stuck run ends with the POSTs it did not get answered counted as failures)."""
    wrk = require_wrk()
    threads = max(1, min(2, connections, len(bodies)))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        await asyncio.to_thread(_write_slices, Path(directory), bodies, threads)
        process = await asyncio.create_subprocess_exec(
            wrk,
            f"-t{threads}",
            f"-c{max(connections, threads)}",
            f"-d{max(1, int(max_seconds))}s",
            "--timeout",
            "120s",
            "-s",
            str(SCRIPT),
            base_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"BENCH_WRK_DIR": directory, "BENCH_WRK_AUTH": authorization, "BENCH_WRK_THREADS": str(threads)},
        )
        stdout, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited {process.returncode}: {stderr.decode()[-2000:]}")
    line = next((x for x in stdout.decode().splitlines() if x.startswith('{"duration_us"')), None)
    if line is None:
        raise RuntimeError(f"wrk wrote no report: {stdout.decode()[-2000:]} {stderr.decode()[-2000:]}")
    raw = json.loads(line)
    return WrkReport(
        seconds=raw["duration_us"] / 1e6,
        posts_sent=raw["posts_sent"],
        posts_answered=raw["posts_answered"],
        posts_ok=raw["posts_ok"],
        events_accepted=raw["events_accepted"],
        failed_posts=raw["failed_posts"],
        first_failure=raw["first_failure"],
        socket_errors=raw["socket_errors"],
        latency_ms={k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
    )
