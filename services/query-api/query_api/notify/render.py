"""The review pack as HTML: the e-mail's body and the printable page (/dashboard/review), one template with print
CSS (A4, no navigation, tables that do not break across pages). Figures carry data-* attributes so tests and
scripts can read them back."""

from decimal import Decimal
from html import escape

from query_api.notify.review import RegionSales, ReviewPack

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #111; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 2px 6px; border-bottom: 1px solid #ddd; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
@media print { @page { size: A4; margin: 12mm; } body { margin: 0; } .no-print { display: none; }
  table, h2 { break-inside: avoid; } }
"""


SCHEME_HEADS = ["Scheme", "Cost", "Incremental units", "Cost / incremental unit", "Over-claim"]


def _n(value: Decimal | float | int | None, places: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{places}f}"


def _table(heads: list[str], rows: list[list[str]], key: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    return f'<table data-table="{key}"><tr>{head}</tr>{body}</table>' if rows else "<p>None.</p>"


def _cell(text: str, data: str | None = None, number: bool = False) -> str:
    attrs = (f' data-value="{escape(data)}"' if data is not None else "") + (' class="n"' if number else "")
    return f"<td{attrs}>{escape(text)}</td>"


def _regions(rows: list[RegionSales]) -> list[list[str]]:
    return [
        [
            _cell(r.name or r.id or "Unassigned", r.id or ""),
            _cell(_n(r.value), str(r.value), True),
            _cell(_n(r.value_change_pct) + ("%" if r.value_change_pct is not None else ""), None, True),
        ]
        for r in rows
    ]


def review_html(pack: ReviewPack, title: str) -> str:
    sell_in = [
        [
            _cell(r.name or r.id or "Unassigned", r.id or ""),
            _cell(_n(r.primary_value), str(r.primary_value), True),
            _cell(_n(r.secondary_value), str(r.secondary_value), True),
            _cell(_n(r.sell_in_per_sell_out), None, True),
        ]
        for r in pack.primary_vs_secondary
    ]
    overstock = [
        [
            _cell(r.distributor_name or r.distributor_id),
            _cell(r.sku_name or r.sku_id),
            _cell(_n(r.on_hand), str(r.on_hand), True),
            _cell(_n(r.days_of_cover, 1), None, True),
        ]
        for r in pack.overstock
    ]
    schemes = [
        [
            _cell(s.name, s.scheme_id),
            _cell(_n(s.cost), str(s.cost), True),
            _cell(_n(s.incremental_units, 0), None, True),
            _cell(_n(s.cost_per_incremental_unit), None, True),
            _cell(_n(s.over_claim), str(s.over_claim), True),
        ]
        for s in pack.schemes
    ]
    field = [
        [
            _cell(r.id or "Unassigned", r.id or ""),
            _cell(_n(r.captures), str(r.captures), True),
            _cell(f"{r.verified_share:.1%}", str(r.verified_share), True),
        ]
        for r in pack.field
    ]
    share = "-" if pack.field_verified_share is None else f"{pack.field_verified_share:.1%}"
    level = "Regions" if pack.level == "region" else "Distributors"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>
<h1>{escape(title)}</h1>
<p>Week {pack.date_from.isoformat()} to {pack.date_to.isoformat()}.
Secondary sales
<strong data-figure="secondary_value" data-value="{pack.secondary_value}">{_n(pack.secondary_value)}</strong>
({_n(pack.secondary_change_pct)}% on the week before), primary
<strong data-figure="primary_value" data-value="{pack.primary_value}">{_n(pack.primary_value)}</strong>.</p>
<h2>Primary vs secondary</h2>{_table([level, "Primary", "Secondary", "Sell-in / sell-out"], sell_in, "sell_in")}
<h2>Top {level.lower()}</h2>{_table([level, "Secondary", "Change"], _regions(pack.top_regions), "top")}
<h2>Bottom {level.lower()}</h2>{_table([level, "Secondary", "Change"], _regions(pack.bottom_regions), "bottom")}
<h2>Overstock: <span data-figure="overstock_alerts" data-value="{pack.overstock_alerts}">{pack.overstock_alerts}</span>
raised</h2>{_table(["Distributor", "SKU", "On hand", "Cover (days)"], overstock, "overstock")}
<h2>Scheme ROI</h2>{_table(SCHEME_HEADS, schemes, "schemes")}
<h2>Field compliance: <span data-figure="field_verified_share" data-value="{pack.field_verified_share}">{share}</span>
geo-verified</h2>{_table([level, "Captures", "Verified"], field, "field")}
</body></html>"""


def review_text(pack: ReviewPack) -> str:
    lines = [
        f"Week {pack.date_from.isoformat()} to {pack.date_to.isoformat()}",
        f"Secondary sales: {pack.secondary_value} ({_n(pack.secondary_change_pct)}% on the week before)",
        f"Primary sales: {pack.primary_value}",
        "Top: " + ", ".join(f"{r.name or r.id} {r.value}" for r in pack.top_regions),
        "Bottom: " + ", ".join(f"{r.name or r.id} {r.value}" for r in pack.bottom_regions),
        f"Overstock alerts raised: {pack.overstock_alerts}",
        f"Field geo-verified share: {pack.field_verified_share}",
    ]
    return "\n".join(lines)
