"""The command line of a rebuild: `sellthrough-rebuild`, configured by query-api's environment (DATABASE_URL,
KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_*, SELLTHROUGH_BUSINESS_TIMEZONE)."""

import asyncio

import asyncpg
import typer

from query_api.jobs.rebuild.run import (
    BATCH_RECORDS,
    Options,
    RebuildExists,
    RebuildRunning,
    drop_previous,
    rebuild,
    status,
)
from query_api.jobs.rebuild.schemas import Schemas
from query_api.jobs.rebuild.source import BrokerUnreachable
from query_api.names import SCHEMA
from query_api.settings import QueryApiSettings
from sellthrough_runtime.logs import configure_logging

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished rebuild from its stored offsets."),
    restart: bool = typer.Option(False, "--restart", help="Drop an unfinished rebuild and start over."),
    swap: bool = typer.Option(True, "--swap/--no-swap", help="Swap the rebuilt schema in once complete."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say how far a rebuild got and what is left."),
    previous: bool = typer.Option(False, "--drop-previous", help="Only drop the schema the last swap replaced."),
    batch_records: int = typer.Option(BATCH_RECORDS, min=1, help="Records per transaction."),
) -> None:
    """Rebuild query-api's projections from the topics into a new schema and swap it in when complete; reads
    keep serving the current one meanwhile, and the live consumer continues from the rebuilt offsets."""
    settings = QueryApiSettings()
    configure_logging("query-api-rebuild", settings.log_level)
    schemas = Schemas(SCHEMA)
    try:
        if dry_run:
            typer.echo(asyncio.run(status(settings)).describe(schemas))
            return
        if previous:
            dropped = asyncio.run(drop_previous(settings))
            typer.echo(f"{schemas.previous} dropped" if dropped else f"no {schemas.previous} to drop")
            return
        if resume and restart:
            raise typer.BadParameter("--resume and --restart exclude each other")
        outcome = asyncio.run(
            rebuild(settings, Options(resume=resume, restart=restart, swap=swap, batch_records=batch_records))
        )
    except (RebuildExists, RebuildRunning) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(3) from error
    except BrokerUnreachable as error:
        typer.echo(f"the broker cannot be reached: {error}", err=True)
        raise typer.Exit(2) from error
    except (OSError, asyncpg.PostgresConnectionError) as error:
        typer.echo(f"PostgreSQL cannot be reached ({settings.database_url.rsplit('@', 1)[-1]}): {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(
        f"rebuilt from {outcome.records:,} records in {outcome.seconds:.1f} s "
        f"({outcome.records_per_second:,.0f} records/s), {outcome.dead_letters} dead letters; "
        + (
            f"swapped in as {schemas.live}, the old schema kept as {schemas.previous}"
            if outcome.swapped
            else f"left in {schemas.rebuild} (not swapped)"
        )
    )
