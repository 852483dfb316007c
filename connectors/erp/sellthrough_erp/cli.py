"""`sellthrough-erp import FILE`: post an ERP primary-invoice export (CSV, JSON, Tally XML) to order-capture;
`sellthrough-erp retailer-invoices FILE`: a distributor's billing export (CSV, Tally XML) as RetailerInvoiced."""

import csv
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from sellthrough_erp import retailer
from sellthrough_erp.invoices import ExportError, Invoice, Rejected, group_invoices, read_rows, to_event
from sellthrough_erp.tally import Skipped, read_names, tally_rows

app = typer.Typer(help="Import ERP exports into Sellthrough.", no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """Import ERP and distributor billing exports into Sellthrough."""


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


class VoucherType(StrEnum):
    SALES = "Sales"
    PURCHASE = "Purchase"


URL = typer.Option("http://127.0.0.1:8001", envvar="SELLTHROUGH_ORDER_CAPTURE_URL", help="order-capture base URL.")
TOKEN = typer.Option(..., envvar="CONNECTOR_TOKEN", help="A connector token (env CONNECTOR_TOKEN).")
BATCH = typer.Option(200, min=1, max=1000, help="Invoices per request.")
REJECTS = typer.Option(None, help="Also write rejected invoices to this CSV file.")
NAMES = typer.Option(
    None, exists=True, dir_okay=False, help="Tally XML: CSV tally_name,id mapping ledger and stock item names to ids."
)


@app.command("import")
def import_invoices(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV, JSON or Tally XML."),
    url: str = URL,
    token: str = TOKEN,
    actor: str = typer.Option("erp-connector", help="The connector id the token was issued to."),
    source: str = typer.Option("erp-export", help="Recorded as the events' source."),
    batch_size: int = BATCH,
    rejects: Path | None = REJECTS,
    names: Path | None = NAMES,
    voucher_type: VoucherType = typer.Option(
        VoucherType.SALES,
        help="Tally XML: Sales (the brand's books: the party ledger is the distributor) or Purchase (a "
        "distributor's books: --distributor says which).",
    ),
    distributor: str | None = typer.Option(None, help="Tally XML Purchase vouchers: the distributor they are of."),
) -> None:
    """Post every invoice in FILE as a PrimaryInvoiced event. Re-running is safe: an invoice number already
    imported comes back as a duplicate. Exits 1 if any invoice was rejected."""
    try:
        if file.suffix.lower() == ".xml":
            if voucher_type is VoucherType.PURCHASE and not distributor:
                raise ExportError("Purchase vouchers are a distributor's books: say whose with --distributor")
            party = "distributor_id" if voucher_type is VoucherType.SALES else "supplier"
            rows, skipped = tally_rows(file, read_names(names), distributor, party, voucher_type.value)
            _print_skipped(skipped)
        else:
            rows = list(read_rows(file))
        invoices = group_invoices(rows)
    except ExportError as error:
        console.print(f"[red]cannot read the export:[/] {error}")
        raise typer.Exit(2) from None
    outcomes = [to_event(invoice, actor, source) for invoice in invoices]
    _post_all(file, invoices, outcomes, url, token, batch_size, rejects)


@app.command("retailer-invoices")
def import_retailer_invoices(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV or Tally XML."),
    url: str = URL,
    token: str = TOKEN,
    actor: str = typer.Option("dms-connector", help="The connector (or distributor login) the token was issued to."),
    source: str = typer.Option("dms", help="Recorded as the events' source: shown with the sales it adds."),
    batch_size: int = BATCH,
    rejects: Path | None = REJECTS,
    names: Path | None = NAMES,
    distributor: str | None = typer.Option(
        None, help="Tally XML: the distributor whose books these are (a CSV names it per row)."
    ),
) -> None:
    """Post a distributor's invoices to retailers (its DMS's CSV or Tally's XML export of Sales vouchers) as
    RetailerInvoiced events: one naming an order is that order's delivery, one without counts as secondary sales
    of its own. Re-running is safe (same distributor and invoice number, same event). Exits 1 if any invoice was
    rejected."""
    try:
        if file.suffix.lower() == ".xml":
            if not distributor:
                raise ExportError("a Tally export does not say whose books it is: give --distributor")
            rows, skipped = tally_rows(file, read_names(names), distributor, "outlet_id", VoucherType.SALES.value)
            _print_skipped(skipped)
        else:
            rows = list(read_rows(file, retailer.REQUIRED_COLUMNS))
        invoices = group_invoices(rows, retailer.HEADER_FIELDS, retailer.line_of, scope="distributor_id")
    except ExportError as error:
        console.print(f"[red]cannot read the export:[/] {error}")
        raise typer.Exit(2) from None
    outcomes = [retailer.to_event(invoice, actor, source) for invoice in invoices]
    _post_all(file, invoices, outcomes, url, token, batch_size, rejects)


def _print_skipped(skipped: list[Skipped]) -> None:
    if skipped:
        console.print(f"skipped {len(skipped)} vouchers that are not invoices of this kind:")
        for s in skipped[:20]:
            console.print(f"  voucher {s.voucher} ({s.number or 'no number'}): {s.why}")


def _post_all(
    file: Path,
    invoices: list[Invoice],
    outcomes: list[dict[str, Any] | Rejected],
    url: str,
    token: str,
    batch_size: int,
    rejects: Path | None,
) -> None:
    """Post the events in batches, then print (and write) the reject report; exit 1 if any was rejected."""
    rejected: list[Rejected] = []
    ready: list[tuple[Invoice, dict[str, Any]]] = []
    for invoice, outcome in zip(invoices, outcomes, strict=True):
        if isinstance(outcome, Rejected):
            rejected.append(outcome)
        else:
            ready.append((invoice, outcome))

    counts: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client, Progress(console=console) as progress:
        task = progress.add_task(f"importing {file.name}", total=len(ready))
        for start in range(0, len(ready), batch_size):
            batch = ready[start : start + batch_size]
            try:
                body = _post(client, [event for _, event in batch])
            except httpx.HTTPStatusError as error:
                console.print(
                    f"[red]order-capture refused the request ({error.response.status_code}):[/] "
                    f"{error.response.text[:500]}"
                )
                raise typer.Exit(2) from None
            except httpx.TransportError as error:
                console.print(f"[red]cannot reach {url}:[/] {error}")
                raise typer.Exit(2) from None
            for (invoice, _), result in zip(batch, body["results"], strict=True):
                counts[result["status"]] += 1
                if result["status"] == "rejected":
                    rejected.append(Rejected(invoice.number, invoice.rows, f"{result['reason']}: {result['detail']}"))
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
