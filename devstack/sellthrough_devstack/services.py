"""Running the Sellthrough services as real processes, as `make dev`, the tests and the benchmarks do."""

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sellthrough_devstack.processes import kill_group, spawn, stop_pid, wait_until

SERVICE_MODULES = {
    "order-capture": "order_capture",
    "stock-ledger": "stock_ledger",
    "scheme-engine": "scheme_engine",
    "query-api": "query_api",
}


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> int:
        env = {**self.env, "SELLTHROUGH_HTTP_PORT": str(self.port), "SELLTHROUGH_HTTP_HOST": "127.0.0.1"}
        self.process = spawn([sys.executable, "-m", SERVICE_MODULES[self.name]], self.log_file, env)
        wait_until(self.ready, timeout, self.name, self.log_file)
        return self.process.pid

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            lines = self.log_file.read_text(errors="replace").splitlines()[-20:] if self.log_file.exists() else []
            last = "\n".join(lines)
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; end of {self.log_file}:\n{last}")
        try:
            return httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process.pid)
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL to the service and its worker processes: no shutdown hooks run, as in a crash."""
        if self.process is not None:
            kill_group(self.process)
            self.process = None
