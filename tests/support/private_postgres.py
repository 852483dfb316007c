"""A PostgreSQL server of a test module's own, for tests that stop, crash or restart it (the session's is shared)."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port


@contextlib.contextmanager
def private_postgres(prefix: str, *, durable: bool = False) -> Iterator[EmbeddedPostgres]:
    """`durable` keeps fsync and synchronous commit on, as in production (for tests whose claim depends on what
    a crash loses); otherwise the server runs with the test suite's fast, unsafe settings."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)  # as root the server runs as another user, who must reach its data directory
    server = EmbeddedPostgres(directory / "data", free_port(), fast_unsafe=not durable)
    server.start()
    try:
        yield server
    finally:
        # A test that crashed the server may leave nothing to stop.
        with contextlib.suppress(Exception):
            server.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)
