"""`sellthrough-dead-letters`: list the records consumers could not apply, and replay them after a fix.

Works on every service installed in this environment (the `sellthrough.consumers` entry points), against the
database each service's settings point at (DATABASE_URL), so it runs beside the live services.
"""

import asyncio
from collections.abc import Callable, Mapping

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sellthrough_runtime.db import create_pool, migrate
from sellthrough_runtime.dead_letters import (
    ConsumerSpec,
    ReplayResult,
    StoredDeadLetter,
    applier_for,
    by_service,
    installed_consumers,
    list_dead_letters,
    open_letter_ids,
    replay,
)

console = Console()

SERVICE_HELP = "A service (order-capture, stock-ledger, scheme-engine, query-api); repeat for several."
_RESOLVED = frozenset({"applied", "already_applied", "not_wanted"})


def make_app(consumers: Callable[[], Mapping[str, ConsumerSpec]] = installed_consumers) -> typer.Typer:
    """The command line over the given consumers (installed services by default; tests pass their own)."""
    app = typer.Typer(
        help="Dead letters: records a consumer could not apply, with the reason. List them; replay them after a fix.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )

    def chosen(services: list[str] | None) -> list[ConsumerSpec]:
        try:
            return by_service(consumers(), services)
        except KeyError as error:
            known = ", ".join(sorted(consumers())) or "none installed"
            raise typer.BadParameter(
                f"unknown service {error.args[0]!r} (known: {known})", param_hint="--service"
            ) from None

    @app.command("list")
    def list_command(
        service: list[str] | None = typer.Option(None, "--service", "-s", help=SERVICE_HELP),
        reason: str | None = typer.Option(None, help="Only this reason, e.g. handler_failed, invalid_event."),
        resolved: bool = typer.Option(False, "--resolved", help="Include letters already replayed (audit)."),
        limit: int = typer.Option(1000, min=1, help="At most this many per service."),
    ) -> None:
        """Dead letters per service, oldest first: id, reason, the record's place and event, detail."""
        found = asyncio.run(_list(chosen(service), reason, resolved, limit))
        # One letter per two lines, not a table: ids and reasons stay whole in narrow terminals and in pipes.
        for spec, letter in found:
            done = letter.resolved_at
            _plain(
                f"{spec.service} #{letter.id} {letter.reason} {letter.event_type or '?'} {letter.event_id or '-'} "
                f"{letter.topic}[{letter.partition}]@{letter.offset} received "
                f"{letter.received_at.isoformat(timespec='seconds')} attempts {letter.attempts}"
                + (f" resolved {letter.resolution} at {done.isoformat(timespec='seconds')}" if done else "")
            )
            _plain(f"    {letter.detail[:500]}")
        console.print(f"{len(found)} dead letter(s)")

    @app.command("replay")
    def replay_command(
        service: str = typer.Option(..., "--service", "-s", help="The service whose dead letters to replay."),
        letter_id: list[int] | None = typer.Option(None, "--id", help="A dead letter's id (from `list`); repeatable."),
        replay_all: bool = typer.Option(False, "--all", help="Every open dead letter of the service."),
        reason: str | None = typer.Option(None, help="With --all: only letters with this reason."),
    ) -> None:
        """Apply dead letters again through the service's own handler, each exactly once, in one transaction
        with its bookkeeping. Exit status 1 if any still fails (it stays listed with its new reason) or an --id
        names no dead letter of the service."""
        if bool(letter_id) == replay_all:
            raise typer.BadParameter("give either --id (one or more) or --all", param_hint="--id/--all")
        (spec,) = chosen([service])
        results = asyncio.run(_replay(spec, letter_id or None, reason))
        counts: dict[str, int] = {}
        for result in results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
            if result.outcome == "failed":
                _plain(f"#{result.id} failed again: {result.reason}: {(result.detail or '')[:300]}")
            elif result.outcome not in _RESOLVED:
                _plain(f"#{result.id}: {result.outcome.replace('_', ' ')}")
        console.print(", ".join(f"{outcome}: {n}" for outcome, n in sorted(counts.items())) or "nothing to replay")
        if counts.get("failed") or counts.get("unknown"):
            raise typer.Exit(1)

    return app


async def _list(
    specs: list[ConsumerSpec], reason: str | None, resolved: bool, limit: int
) -> list[tuple[ConsumerSpec, StoredDeadLetter]]:
    found = []
    for spec in specs:
        settings = spec.settings()
        if not await _has_run(settings.database_url, spec.schema):
            continue  # not deployed on this database: nothing to list, and no schema to create for it
        await migrate(settings.database_url, spec.schema, spec.migrations_dir)
        pool = await create_pool(settings.database_url, spec.schema, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                letters = await list_dead_letters(
                    conn, spec.group_id, reason=reason, include_resolved=resolved, limit=limit
                )
        finally:
            await pool.close()
        found += [(spec, letter) for letter in letters]
    return found


async def _replay(spec: ConsumerSpec, ids: list[int] | None, reason: str | None) -> list[ReplayResult]:
    settings = spec.settings()
    if not await _has_run(settings.database_url, spec.schema):
        raise typer.BadParameter(f"{spec.service} has never run on this database (no schema {spec.schema!r})")
    # The same migrations the service applies on start: replaying needs the columns that record the outcome.
    await migrate(settings.database_url, spec.schema, spec.migrations_dir)
    pool = await create_pool(settings.database_url, spec.schema, min_size=1, max_size=2)
    try:
        applier = applier_for(spec, pool, settings)
        todo = ids if ids is not None else await open_letter_ids(pool, spec.group_id, reason)
        results = []
        columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("replay", total=len(todo))
            for letter_id in todo:
                results.append(await replay(pool, applier, spec.group_id, letter_id))
                progress.advance(task)
        return results
    finally:
        await pool.close()


async def _has_run(database_url: str, schema: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.dead_letters"))
    finally:
        await conn.close()


def _plain(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


app = make_app()
