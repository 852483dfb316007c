"""`sellthrough-erp import FILE`: post an ERP primary-invoice export to order-capture."""

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from sellthrough_erp.invoices import ExportError, Rejected, group_invoices, read_rows, to_event

app = typer.Typer(help="Import ERP exports into Sellthrough.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """Import ERP exports into Sellthrough (more export kinds will sit beside `import`)."""


def _retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, httpx.HTTPStatusError) and error.response.status_code in (429, 502, 503, 504)


@retry(
    retry=retry_if_exception(_retryable), stop=stop_after_attempt(6), wait=wait_exponential(0.5, max=10), reraise=True
)
def _post(client: httpx.Client, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/events", json={"events": events})
    response.raise_for_status()
    return dict(response.json())


@app.command("import")
def import_invoices(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV or JSON export."),
    url: str = typer.Option(
        "http://127.0.0.1:8001", envvar="SELLTHROUGH_ORDER_CAPTURE_URL", help="order-capture base URL."
    ),
    token: str = typer.Option(..., envvar="CONNECTOR_TOKEN", help="A connector token (env CONNECTOR_TOKEN)."),
    actor: str = typer.Option("erp-connector", help="The connector id the token was issued to."),
    source: str = typer.Option("erp-export", help="Recorded as the events' source."),
    batch_size: int = typer.Option(200, min=1, max=1000, help="Invoices per request."),
    rejects: Path | None = typer.Option(None, help="Also write rejected invoices to this CSV file."),
) -> None:
    """Post every invoice in FILE as a PrimaryInvoiced event. Re-running is safe: an invoice number already
    imported comes back as a duplicate. Exits 1 if any invoice was rejected."""
    try:
        invoices = group_invoices(read_rows(file))
    except ExportError as error:
        console.print(f"[red]cannot read the export:[/] {error}")
        raise typer.Exit(2) from None

    rejected: list[Rejected] = []
    ready: list[dict[str, Any]] = []
    for invoice in invoices:
        outcome = to_event(invoice, actor, source)
        (rejected if isinstance(outcome, Rejected) else ready).append(outcome)  # type: ignore[arg-type]

    counts: Counter[str] = Counter()
    rows_of = {inv.number: inv.rows for inv in invoices}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client, Progress(console=console) as progress:
        task = progress.add_task(f"importing {file.name}", total=len(ready))
        for start in range(0, len(ready), batch_size):
            batch = ready[start : start + batch_size]
            try:
                body = _post(client, batch)
            except httpx.HTTPStatusError as error:
                console.print(
                    f"[red]order-capture refused the request ({error.response.status_code}):[/] "
                    f"{error.response.text[:500]}"
                )
                raise typer.Exit(2) from None
            except httpx.TransportError as error:
                console.print(f"[red]cannot reach {url}:[/] {error}")
                raise typer.Exit(2) from None
            for event, result in zip(batch, body["results"], strict=True):
                counts[result["status"]] += 1
                if result["status"] == "rejected":
                    number = event["payload"]["invoice_number"]
                    rejected.append(Rejected(number, rows_of[number], f"{result['reason']}: {result['detail']}"))
            progress.advance(task, len(batch))

    counts["rejected"] = len(rejected)
    _summary(counts, rejected)
    if rejects is not None:
        _write_rejects(rejects, rejected)
    if rejected:
        raise typer.Exit(1)


def _summary(counts: Counter[str], rejected: list[Rejected]) -> None:
    console.print(f"accepted: {counts['accepted']}  duplicate: {counts['duplicate']}  rejected: {counts['rejected']}")
    if rejected:
        table = Table("invoice", "rows", "reason", title="rejected invoices")
        for r in rejected:
            table.add_row(r.invoice_number, ", ".join(map(str, r.rows)), r.reason)
        console.print(table)


def _write_rejects(path: Path, rejected: list[Rejected]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["invoice_number", "rows", "reason"])
        for r in rejected:
            writer.writerow([r.invoice_number, " ".join(map(str, r.rows)), r.reason])


if __name__ == "__main__":
    app()
