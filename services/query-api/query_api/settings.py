"""query-api's settings: the shared service settings and the knobs of its projections, jobs and field reads."""

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
