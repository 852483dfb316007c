"""query-api's settings: the shared service settings and the knobs of its projections, jobs and field reads."""

from typing import Literal

from pydantic import Field

from sellthrough_runtime.settings import ServiceSettings


class QueryApiSettings(ServiceSettings):
    http_port: int = 8004
    projection_consumers: int = Field(
        default=1,
        ge=1,
        le=12,
        description="Members of the projection consumer group run by this process. On a real Kafka, two let "
        "Postgres apply one member's batch while Python prepares the other's; more than the trade topic's 12 "
        "partitions (over all processes) would idle. One by default: on the embedded broker (Tansu 0.6) two members "
        "joining together can livelock, the second expelled a second after each assignment, its partitions never "
        "read; members in separate processes work.",
    )
    sales_fold_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How often the order lines the projection queued are folded into the sales rollups "
        "(projections/sales_fold.py). Reads add the queued lines, so figures are exact either way; a longer interval "
        "means fewer, larger folds and more queued lines for each read to add.",
    )
    sales_running_fold_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the lines the folds queued for the running totals per outlet and per (brand, outlet) "
        "are moved into them (projections/sales_running.py, migrations 0030 and 0032). Each move rewrites a selling "
        "outlet's rows from its earliest new day on, once for all its lines of the interval; reads add the queue, so "
        "figures are exact either way.",
    )
    projection_synchronous_commit: bool = Field(
        default=False,
        description="Whether the projection consumers' and the sales fold's transactions wait for their WAL to reach "
        "disk. Off by default: a crash loses only a suffix of their commits, offsets included, which the consumer "
        "reads again from Kafka (docs/architecture.md, asynchronous commit of the projections).",
    )
    projection_parallel_transactions: int = Field(
        default=2,
        ge=1,
        le=12,
        description="Transactions each projection consumer applies a batch in at once, each with whole partitions "
        "(and their offsets), with asynchronous commit only (projection_synchronous_commit off). Events are keyed by "
        "distributor, so the parts touch different rows; after a failure every partition is read again from its "
        "stored offset, whichever part committed.",
    )
    sales_fold_max_lines: int = Field(
        default=50_000,
        ge=100,
        description="At most this many queued order lines folded in one transaction; a full fold is followed by the "
        "next at once.",
    )
    reconciliation_check_seconds: float = Field(
        default=60,
        gt=0,
        description="How often book stock is compared with the stock ledger's on-hand for every position "
        "(sellthrough_reconciliation_positions_differing).",
    )
    off_site_alert_orders: int = Field(
        default=3,
        ge=1,
        description="A rep with at least this many off-site orders within off_site_alert_days is alerted "
        "(GET /v1/field/off-site-alerts).",
    )
    off_site_alert_days: int = Field(default=7, ge=1, le=366, description="The off-site alert's window, in days.")
    geotag_proposal_max_accuracy_m: float = Field(
        default=30,
        gt=0,
        description="A capture at an ungeotagged outlet proposes its geotag when its accuracy is at least this "
        "good, in metres (GET /v1/field/geotag-proposals).",
    )
    clock_skew_alert_seconds: float = Field(
        default=300,
        gt=0,
        description="A device whose clock was off by more than this (either way) is flagged in GET "
        "/v1/field/clock-skew.",
    )
    # Alerts that reach people (query_api/notify, README "Alerts that reach people").
    notify_poll_seconds: float = Field(
        default=5, gt=0, description="How often alert state is diffed into the delivery outbox and due webhooks sent."
    )
    notify_webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="A webhook delivery failing this many times is dead-lettered."
    )
    notify_backoff_base_seconds: float = Field(
        default=30, gt=0, description="The first retry's delay; each further retry doubles it (with jitter)."
    )
    notify_backoff_max_seconds: float = Field(default=3600, gt=0, description="No retry waits longer than this.")
    notify_webhook_timeout_seconds: float = Field(default=10, gt=0, description="One webhook POST's timeout.")
    notify_digest_hour: int = Field(
        default=7, ge=0, le=23, description="Hour of the business day (business_timezone) the daily digest is sent."
    )
    notify_review_hour: int = Field(
        default=8, ge=0, le=23, description="Hour on Mondays (business_timezone) the review pack is sent."
    )
    notify_schedules: bool = Field(
        default=True, description="Send the digest and review pack on schedule (false: only with sellthrough-notify)."
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for the digest and review pack; none: no mail is sent."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        default="starttls", description="starttls: upgrade the plain connection; tls: TLS from the start (465)."
    )
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = Field(default="sellthrough@example.invalid", description="The From address of every mail sent.")
    dashboard_url: str | None = Field(
        default=None, description="query-api's public base URL, to link the printable review page from the mail."
    )
    export_batch_rows: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Rows read from the server-side cursor and encoded at a time when a large table is exported as "
        "a file (GET /v1/sales/events, /v1/outlets/map): a Parquet row group each.",
    )
