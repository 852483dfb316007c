"""`sellthrough-dev`: start, stop and inspect the development stack."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from sellthrough_field.reference import world_from

from sellthrough_devstack import demo, demo_field, stack
from sellthrough_devstack.tokens import IssuedToken, device_token_name

app = typer.Typer(
    help="Sellthrough development stack (embedded Postgres + Tansu + the four services).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
ROOT_OPTION = typer.Option(Path(".dev"), help="Where the stack keeps its data, logs and tokens.")


@app.command()
def up(
    root: Path = ROOT_OPTION,
    demo_data: bool = typer.Option(True, help="Load the demo brand."),
    outlets: int = typer.Option(demo.DemoSize.outlets, min=1, help="Outlets in the demo brand."),
    orders: int = typer.Option(demo.DemoSize.orders, min=0, help="Orders in the demo history."),
    days: int = typer.Option(demo.DemoSize.days, min=14, max=365, help="Days of demo history, ending yesterday."),
    field_days: int = typer.Option(
        demo_field.FIELD_DAYS,
        min=0,
        max=44,
        help="The last days of the reps' orders are captured by the field-force simulator on their phones and "
        "synced with their device tokens (0: everything posted directly).",
    ),
) -> None:
    """Start everything in the background, load demo data, print URLs and a working curl example."""
    root = root.resolve()
    field_days = min(field_days, days - 1) if demo_data else 0
    brand = demo.generate(demo.DemoSize(outlets=outlets, orders=orders, days=days), field_days=field_days)
    phones = demo_field.rep_ids(brand.reference) if field_days else []
    try:
        with console.status("starting PostgreSQL, the broker and the services..."):
            state, tokens = stack.start(
                root,
                rep_id=brand.example_order_target.rep_id,
                distributor_ids=demo.distributor_ids(brand.reference),
                device_reps=phones,
            )
    except (RuntimeError, TimeoutError) as error:
        console.print(f"[red]could not start the stack:[/] {error}")
        raise typer.Exit(1) from None
    console.print(f"[green]stack up[/] (logs in {root / 'logs'})")
    if demo_data:
        admin = tokens["admin"].token
        posted_reference = demo.post_all(state.urls["order-capture"], admin, brand.reference, "reference data")
        _report("reference data", posted_reference)
        demo.wait_for_masters(state.urls["order-capture"], admin, brand.reference)
        # What `sellthrough-field simulate --reference` reads: the field force's reps, outlets, beats and prices.
        (root / "reference.json").write_text(json.dumps(brand.reference))
        # Schemes before the orders they apply to; reported together with the history as one trade load.
        posted_schemes = demo.post_all(state.urls["order-capture"], admin, brand.schemes, "schemes")
        posted_history = demo.post_all(
            state.urls["order-capture"], admin, brand.history, "trade history", batch_size=1000
        )
        posted_trade = posted_schemes.merged(posted_history)
        _report("schemes and trade history", posted_trade)
        field_lines = 0
        if field_days:
            field = _load_field_force(root, brand, field_days, state.urls["order-capture"], tokens, phones)
            # Lines of every order the phones' queues hold as sent: on a re-run, the earlier run's too.
            field_lines = field.lines
        with console.status("waiting for query-api to project the demo orders..."):
            lines = demo.line_count(posted_trade.accepted) + field_lines
            demo.wait_for_sales_lines(state.urls["query-api"], tokens["analyst"].token, lines, days=days)
    example = root / "example.sh"
    example.write_text(
        demo.curl_example(
            state.urls["order-capture"], state.urls["query-api"], root / "tokens.env", brand.example_order_target
        )
    )
    _print_summary(state, root)


@app.command()
def stop(root: Path = ROOT_OPTION) -> None:
    """Stop every process `up` started."""
    stopped = stack.stop(root.resolve())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(root: Path = ROOT_OPTION) -> None:
    """Show what is running and where."""
    state = stack.StackState.load(root.resolve())
    if state is None:
        console.print("not running")
        raise typer.Exit(1)
    _print_summary(state, root.resolve())


def _load_field_force(
    root: Path, brand: demo.DemoBrand, field_days: int, url: str, tokens: dict[str, IssuedToken], phones: list[str]
) -> demo_field.FieldLoad:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    world = world_from(brand.reference)
    plan = demo_field.field_plan(world, field_days, yesterday, brand.field_orders, seed=7)
    device_tokens = {rep: tokens[device_token_name(rep)].token for rep in phones}
    out = root / "field"
    with Progress() as progress:
        task = progress.add_task(f"field force: {len(phones)} phones, last {field_days} days", total=len(phones))
        field = demo_field.load(
            out,
            brand.reference,
            plan,
            url,
            {**device_tokens, "admin": tokens["admin"].token},
            lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"field force: {field.counts}")
    how = "captured by the field-force simulator" if field.simulated else "found in the phones' queues"
    console.print(f"  {field.orders} orders {how}, synced with each rep's device token; queues and ledger in {out}")
    for problem in field.problems[:10]:
        console.print(f"  [yellow]{problem}[/]", highlight=False)
    return field


def _report(what: str, report: demo.PostReport) -> None:
    console.print(f"{what}: {report.counts}")
    for rejection in report.rejections[:10]:
        console.print(f"  [yellow]rejected[/] {rejection}", highlight=False)


def _print_summary(state: stack.StackState, root: Path) -> None:
    console.print(f"PostgreSQL: {state.database_url}")
    console.print(f"Kafka:      {state.kafka_bootstrap_servers}")
    if "query-api" in state.urls:
        console.print(f"Dashboard:  {state.urls['query-api']}/dashboard   (paste ANALYST_TOKEN from tokens.env)")
    for name, url in state.urls.items():
        console.print(f"{name:<14} {url}   (OpenAPI: {url}/docs)")
    example = root / "example.sh"
    if example.exists():
        console.print(f"\nPost an order as a rep and read it back: `bash {example}`, which runs:\n")
        console.print(example.read_text(), markup=False, highlight=False)
    console.print(f"Tokens for other roles are in {root / 'tokens.env'}. Stop everything with `make stop`.")


if __name__ == "__main__":
    app()
