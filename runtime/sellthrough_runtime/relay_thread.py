"""The outbox relay on an event loop of its own, in a thread, with a small pool of its own.

Why: in order-capture the relay shared the event loop of the process serving POSTs, whose handlers are CPU-bound
Python. Every await of the relay (a dozen database and broker round trips a turn) then waited for a whole loop
iteration, that is for every ready request handler's next slice of CPU: at 5,000 events/s on 2 busy cores,
accepted rows waited 26-27 s (p50) for the relay, whether it claimed 1,000 or 10,000 rows at a time, while a
request took 1.3 s from its transaction's start to its answer (docs/benchmarks.md, "Round 4 findings:
freshness"). In a thread of its own the relay waits for the GIL instead (handed over every few milliseconds,
and released while either side waits on a socket), not for the requests' turns.

The relay itself is unchanged (outbox.py): the same turns on the advisory lock, claims and marks. `wake()` may be
called from any thread (the request handlers call it from the serving loop)."""

import asyncio
import contextlib
import threading
from collections.abc import Callable

import asyncpg

from sellthrough_runtime.db import create_pool
from sellthrough_runtime.outbox import OutboxRelay
from sellthrough_runtime.settings import ServiceSettings

POOL_SIZE = 3
"""A turn holds one connection; the backlog gauge and RelayRecovery's checks take another between turns."""


class RelayThread:
    """A Job (`run`) and a Relay (`wake`): the service's outbox relay, run in a thread of its own."""

    def __init__(
        self,
        settings: ServiceSettings,
        service: str,
        schema: str,
        relay: Callable[[asyncpg.Pool], OutboxRelay],
        idle_poll_seconds: float = 0.5,
    ) -> None:
        """`relay`: builds the relay on the thread's pool (the pool must belong to the loop that uses it);
        `idle_poll_seconds`: how often an idle relay looks for rows it was not woken for."""
        self._idle_poll_seconds = idle_poll_seconds
        self._settings = settings
        self._service = service
        self._schema = schema
        self._build = relay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay: OutboxRelay | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    def wake(self) -> None:
        """Tell the relay new rows are committed, so it publishes now instead of at its next poll."""
        loop, relay = self._loop, self._relay
        if loop is not None and relay is not None:
            # RuntimeError: the thread's loop just closed; its next run publishes what is there anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(relay.wake)

    async def run(self) -> None:
        """Run the relay in its thread until cancelled; a failure there is raised here (the job is restarted)."""
        caller = asyncio.get_running_loop()
        finished: asyncio.Future[None] = caller.create_future()

        def report(outcome: BaseException | None) -> None:
            if finished.done():
                return
            if outcome is None or isinstance(outcome, asyncio.CancelledError):
                finished.set_result(None)
            else:
                finished.set_exception(outcome)

        def target() -> None:
            outcome: BaseException | None = None
            try:
                asyncio.run(self._serve())
            except BaseException as error:  # noqa: BLE001 - handed to the job's own task, which raises it
                outcome = error
            if not caller.is_closed():
                caller.call_soon_threadsafe(report, outcome)

        self._stopping.clear()
        thread = threading.Thread(target=target, name=f"{self._service}-outbox-relay", daemon=True)
        thread.start()
        try:
            await asyncio.shield(finished)
        finally:
            self._stop()
            await asyncio.to_thread(thread.join, 15)

    def _stop(self) -> None:
        self._stopping.set()  # seen by a thread still starting (before its task can be cancelled)
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing left to cancel
                loop.call_soon_threadsafe(task.cancel)

    async def _serve(self) -> None:
        settings = self._settings
        pool = await create_pool(
            settings.database_url,
            self._schema,
            min_size=1,
            max_size=POOL_SIZE,
            connect_timeout=settings.db_connect_timeout_s,
            acquire_timeout=settings.db_acquire_timeout_s,
            command_timeout=settings.db_command_timeout_s,
        )
        try:
            relay = self._build(pool)
            self._task = asyncio.current_task()
            self._loop = asyncio.get_running_loop()
            self._relay = relay
            # Checked after the task is visible: _stop either finds the task to cancel or is seen here.
            if self._stopping.is_set():
                return
            await relay.run(self._idle_poll_seconds)
        finally:
            self._relay = None
            self._loop = None
            self._task = None
            await pool.close()
