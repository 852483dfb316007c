"""A PostgreSQL server of a test module's own, for tests that stop and restart it (the session's is shared)."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sellthrough_devstack.postgres import EmbeddedPostgres
from sellthrough_devstack.processes import free_port


@contextlib.contextmanager
def private_postgres(prefix: str) -> Iterator[EmbeddedPostgres]:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)  # as root the server runs as another user, who must reach its data directory
    server = EmbeddedPostgres(directory / "data", free_port(), fast_unsafe=True)
    server.start()
    try:
        yield server
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(directory, ignore_errors=True)
