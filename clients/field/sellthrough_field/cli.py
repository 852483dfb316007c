"""`sellthrough-field`: enqueue events on a device queue, sync queues to order-capture, show their state, simulate a
field force."""

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from sellthrough_field.backoff import Backoff, Retryable
from sellthrough_field.fieldday import DEFAULT_NO_ORDER_REASONS
from sellthrough_field.queue import EventIdReused, EventQueue
from sellthrough_field.reference import world_from
from sellthrough_field.simulate import Plan, Simulation
from sellthrough_field.sync import Limits, Syncer, SyncError, client_for

app = typer.Typer(help=__doc__, no_args_is_help=True)

Url = Annotated[str, typer.Option(envvar="SELLTHROUGH_ORDER_CAPTURE_URL", help="order-capture's base URL.")]
TokensFile = Annotated[
    Path | None, typer.Option(help="JSON object: actor (rep id) -> bearer token, for queues of several devices.")
]
Token = Annotated[str | None, typer.Option(envvar="SELLTHROUGH_FIELD_TOKEN", help="The device's bearer token.")]


def _queue_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.sqlite")) if path.is_dir() else [path]
    return files


def _tokens(tokens_file: Path | None) -> dict[str, str]:
    if tokens_file is None:
        return {}
    document = json.loads(tokens_file.read_text())
    return {str(k): str(v) for k, v in document.items()}


@app.command()
def enqueue(
    queue: Annotated[Path, typer.Argument(help="The device's queue file (created if absent).")],
    file: Annotated[Path, typer.Option(help="A JSON event or a JSON array of events; '-' reads stdin.")],
    device: Annotated[str | None, typer.Option(help="Record the device id this queue speaks for.")] = None,
    actor: Annotated[str | None, typer.Option(help="Record the actor (rep id) this queue speaks for.")] = None,
) -> None:
    """Queue events for sending. An event without event_id gets a new UUIDv7; its content is frozen from now on."""
    text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text()
    document: Any = json.loads(text)
    events = document if isinstance(document, list) else [document]
    with EventQueue(queue) as q:
        if device:
            q.set_meta("device_id", device)
        if actor:
            q.set_meta("actor", actor)
        for event in events:
            if device:
                event.setdefault("source", device)
            if actor:
                event.setdefault("actor", actor)
            try:
                typer.echo(q.enqueue(event))
            except EventIdReused as error:
                typer.echo(f"refused: {error}", err=True)
                raise typer.Exit(2) from None


@app.command()
def sync(
    queues: Annotated[list[Path], typer.Argument(help="Queue files, or directories of *.sqlite queues.")],
    url: Url = "http://127.0.0.1:8001",
    token: Token = None,
    tokens: TokensFile = None,
    max_events: Annotated[int, typer.Option(help="Events per request (order-capture's max_batch_events).")] = 1000,
    max_bytes: Annotated[int, typer.Option(help="Bytes per request (order-capture's max_body_bytes).")] = 8 << 20,
    attempts: Annotated[int, typer.Option(help="Tries per request before giving up for now.")] = 8,
) -> None:
    """Send every pending event; exit 1 if some queue could not be synced (its events stay queued)."""
    by_actor = _tokens(tokens)
    failed = False
    for path in _queue_files(queues):
        with EventQueue(path) as queue:
            actor = queue.meta("actor") or ""
            bearer = by_actor.get(actor) or token
            if bearer is None:
                typer.echo(f"{path.name}: no token for actor '{actor}'", err=True)
                failed = True
                continue
            with client_for(url, bearer) as client:
                syncer = Syncer(
                    queue, client, limits=Limits(max_events, max_bytes), backoff=Backoff(max_attempts=attempts)
                )
                try:
                    report = syncer.sync()
                except (Retryable, SyncError) as error:
                    typer.echo(
                        f"{path.name}: not synced ({error}); {queue.counts().pending} events still queued", err=True
                    )
                    failed = True
                    continue
            typer.echo(
                f"{path.name}: accepted {report.accepted}, duplicate {report.duplicate}, rejected {report.rejected}, "
                f"retries {report.retries}, pending {report.remaining}"
            )
    if failed:
        raise typer.Exit(1)


@app.command()
def status(
    queues: Annotated[list[Path], typer.Argument(help="Queue files, or directories of *.sqlite queues.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Pending, sent and rejected counts per queue, and every rejection with its reason."""
    out: dict[str, Any] = {}
    for path in _queue_files(queues):
        with EventQueue(path) as queue:
            counts = queue.counts()
            out[path.name] = {
                "device_id": queue.meta("device_id"),
                "actor": queue.meta("actor"),
                "pending": counts.pending,
                "sent": counts.sent,
                "rejected": counts.rejected,
                "rejections": [r.__dict__ for r in queue.rejected()],
            }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for name, s in out.items():
        typer.echo(
            f"{name} ({s['actor']} on {s['device_id']}): pending {s['pending']}, sent {s['sent']}, "
            f"rejected {s['rejected']}"
        )
        for r in s["rejections"]:
            typer.echo(f"  rejected {r['event_type']} {r['event_id']}: {r['reason']} {r['detail'] or ''}")


@app.command()
def simulate(
    reference: Annotated[Path, typer.Option(help="JSON array of reference events (reps, outlets, SKUs).")],
    out: Annotated[Path, typer.Option(help="Directory for the device queues and ledger.json.")],
    reps: int = 3,
    days: int = 1,
    end: Annotated[str | None, typer.Option(help="Last simulated day (default yesterday, UTC).")] = None,
    seed: int = 1,
    order_share: float = 0.8,
    off_site_share: float = 0.1,
    offline_share: float = 0.4,
    lost_request_share: float = 0.1,
    lost_answer_share: float = 0.1,
    batch_events: int = 1000,
    offline_last_day: Annotated[bool, typer.Option(help="Every rep is out of coverage on the last day.")] = False,
    absent_share: Annotated[float, typer.Option(help="Share of planned days a rep never starts.")] = 0.1,
    skip_share: Annotated[float, typer.Option(help="Share of planned outlets not called on.")] = 0.15,
    unplanned_share: Annotated[
        float, typer.Option(help="Chance, at each planned outlet, of also calling on an unplanned one.")
    ] = 0.15,
    no_order_reason: Annotated[
        list[str] | None,
        typer.Option(
            help="A reason a visit may end without an order (repeat it for each): order-capture's "
            "SELLTHROUGH_NO_ORDER_REASONS. Default: order-capture's default list."
        ),
    ] = None,
    planner: Annotated[
        str, typer.Option(help="Key of the admin token in --tokens that publishes the plans the simulator makes.")
    ] = "admin",
    timezone: Annotated[
        str, typer.Option(envvar="SELLTHROUGH_BUSINESS_TIMEZONE", help="The brand's time zone: days start 08:30 there.")
    ] = "UTC",
    url: Annotated[
        str | None,
        typer.Option(
            envvar="SELLTHROUGH_ORDER_CAPTURE_URL",
            help="Sync while in coverage; without it every device stays offline.",
        ),
    ] = None,
    tokens: TokensFile = None,
    token: Token = None,
) -> None:
    """Simulate a field force; the queues keep what was still offline at the end: send it with `sync`."""
    shares = (order_share, off_site_share, offline_share, absent_share, skip_share, unplanned_share)
    if not all(0 <= share <= 1 for share in shares):
        raise typer.BadParameter("every share must be between 0 and 1")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone '{timezone}'") from None
    if not 0 < days <= 44:
        raise typer.BadParameter("days must be 1..44 (order-capture takes a rep's events up to 45 days old)")
    last = date.fromisoformat(end) if end else datetime.now(UTC).date() - timedelta(days=1)
    plan = Plan(
        reps=reps,
        days=days,
        end=last,
        seed=seed,
        order_share=order_share,
        off_site_share=off_site_share,
        offline_share=offline_share,
        lost_request_share=lost_request_share,
        lost_answer_share=lost_answer_share,
        batch_events=batch_events,
        offline_last_day=offline_last_day,
        absent_share=absent_share,
        skip_share=skip_share,
        unplanned_share=unplanned_share,
        no_order_reasons=tuple(no_order_reason) if no_order_reason else DEFAULT_NO_ORDER_REASONS,
        planner=planner,
        timezone=timezone,
    )
    out.mkdir(parents=True, exist_ok=True)
    world = world_from(json.loads(reference.read_text()))
    # One token for every rep and the planner (an admin's, in the dev stack) unless --tokens has their own.
    everyone = [rep.rep_id for rep in world.reps] + [planner]
    by_actor = {actor: token for actor in everyone if token} | _tokens(tokens)
    ledger = Simulation(world, plan, out, url or os.environ.get("SELLTHROUGH_ORDER_CAPTURE_URL"), by_actor).run()
    document = ledger.document()
    typer.echo(
        f"{len(ledger.orders)} orders ({len(document['off_site_event_ids'])} off-site) and {document['visits']} "
        f"visits ({len(document['off_site_visit_event_ids'])} off-site) by {len(ledger.devices)} reps over {days} "
        f"days, {document['attended_days']} days attended, {document['absent_days']} absent; plans "
        f"{ledger.plans}; {document['events']} events queued, {ledger.syncs} syncs, {ledger.network_failures} "
        f"network failures; ledger: {out / 'ledger.json'}"
    )
    for note in ledger.notes:
        typer.echo(f"note: {note}", err=True)
