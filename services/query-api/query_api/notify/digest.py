"""The daily e-mail digest: for each e-mail subscription, the stock alerts raised now that its role reads in its
territory, of its kinds: counts by kind and the most urgent first, from the reads behind GET /v1/alerts."""

from dataclasses import dataclass
from datetime import date
from html import escape

import asyncpg

from query_api.notify.mail import Mail
from query_api.notify.subscriptions import ALERT_KINDS, Subscription
from query_api.reads.stock import StockFilter, StockLevel, alert_counts, alert_list

LISTED = 200


@dataclass(frozen=True)
class Digest:
    counts: dict[str, int]
    """Raised alerts per kind (only the subscription's kinds)."""
    alerts: list[asyncpg.Record]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def digest_for(conn: asyncpg.Connection, sub: Subscription) -> Digest:
    scope = await sub.scope(conn)
    f = StockFilter(StockLevel.NATIONAL, None, None, None, LISTED, scope.distributor_list)
    counts: dict[str, int] = {kind: 0 for kind in ALERT_KINDS if kind in sub.kinds}
    alerts: list[asyncpg.Record] = []
    for kind in counts:
        rows = await alert_counts(conn, f, kind)
        counts[kind] = sum(int(r["alerts"]) for r in rows)
        alerts.extend(await alert_list(conn, f, kind, LISTED))
    return Digest(counts, alerts[:LISTED])


def _line(a: asyncpg.Record) -> str:
    cover = "-" if a["days_of_cover"] is None else f"{a['days_of_cover']:.1f} days"
    return (
        f"{a['kind']}: {a['distributor_name'] or a['distributor_id']} / {a['sku_name'] or a['sku_id']}, "
        f"on hand {a['on_hand']}, cover {cover}"
    )


def digest_mail(sub: Subscription, day: date, d: Digest) -> Mail:
    assert sub.email is not None
    counts = ", ".join(f"{kind} {n}" for kind, n in d.counts.items())
    subject = f"Sellthrough alerts {day.isoformat()}: {d.total} raised"
    text = "\n".join(
        [f"Stock alerts raised on {day.isoformat()}: {d.total} ({counts}).", "", *(_line(a) for a in d.alerts)]
    )
    items = "".join(f"<li>{escape(_line(a))}</li>" for a in d.alerts)
    cells = "".join(f'<td data-kind="{escape(k)}">{n}</td>' for k, n in d.counts.items())
    heads = "".join(f"<th>{escape(k)}</th>" for k in d.counts)
    html = (
        f"<html><body><h1>Stock alerts, {day.isoformat()}</h1>"
        f'<p>Raised: <strong data-total="alerts">{d.total}</strong></p>'
        f"<table><tr>{heads}</tr><tr>{cells}</tr></table><ul>{items}</ul></body></html>"
    )
    return Mail(to=sub.email, subject=subject, text=text, html=html)
