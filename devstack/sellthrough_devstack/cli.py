"""`sellthrough-dev`: start, stop and inspect the development stack."""

from pathlib import Path

import typer
from rich.console import Console

from sellthrough_devstack import demo, stack

app = typer.Typer(
    help="Sellthrough development stack (embedded Postgres + Tansu + the four services).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
ROOT_OPTION = typer.Option(Path(".dev"), help="Where the stack keeps its data, logs and tokens.")


@app.command()
def up(root: Path = ROOT_OPTION, demo_data: bool = typer.Option(True, help="Load the demo brand.")) -> None:
    """Start everything in the background, load demo data, print URLs and a curl example."""
    root = root.resolve()
    try:
        with console.status("starting PostgreSQL, the broker and the services..."):
            state, tokens = stack.start(root)
    except (RuntimeError, TimeoutError) as error:
        console.print(f"[red]could not start the stack:[/] {error}")
        raise typer.Exit(1) from None
    console.print(f"[green]stack up[/] (logs in {root / 'logs'})")
    if demo_data:
        brand = demo.generate()
        admin = tokens["admin"].token
        counts = demo.post_all(state.urls["order-capture"], admin, brand.reference, "reference data")
        console.print(f"reference data: {counts}")
        outlets = sum(e["event_type"] == "OutletRegistered" for e in brand.reference)
        demo.wait_for_masters(state.urls["order-capture"], admin, outlets)
        counts = demo.post_all(state.urls["order-capture"], admin, brand.orders, "orders")
        console.print(f"orders: {counts}")
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


def _print_summary(state: stack.StackState, root: Path) -> None:
    console.print(f"PostgreSQL: {state.database_url}")
    console.print(f"Kafka:      {state.kafka_bootstrap_servers}")
    for name, url in state.urls.items():
        console.print(f"{name:<14} {url}   (OpenAPI: {url}/docs)")
    console.print(f"\nTokens are in {root / 'tokens.env'}. Try:\n")
    console.print(f"  source {root / 'tokens.env'}", markup=False)
    console.print(
        f'  curl -s -H "Authorization: Bearer $ANALYST_TOKEN" "{state.urls.get("query-api", "")}/v1/sales?level=zone"',
        markup=False,
    )


if __name__ == "__main__":
    app()
