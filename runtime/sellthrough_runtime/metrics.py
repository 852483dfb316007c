"""Prometheus metrics shared by all services. Defined once per process; `service` is a label.

A gauge's multiprocess_mode says how /metrics combines the workers' values when a service runs with several
worker processes (workers.py); it is ignored otherwise."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "sellthrough_http_requests_total", "HTTP requests by route and status.", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram("sellthrough_http_request_seconds", "HTTP request latency.", ["service", "method", "route"])
EVENTS_INGESTED = Counter(
    "sellthrough_events_ingested_total",
    "Events received over HTTP by outcome (accepted, duplicate, rejected) and reason.",
    ["service", "event_type", "outcome", "reason"],
)
OUTBOX_PUBLISHED = Counter("sellthrough_outbox_published_total", "Outbox rows published to Kafka.", ["service"])
OUTBOX_BACKLOG = Gauge(
    "sellthrough_outbox_backlog", "Outbox rows not yet published.", ["service"], multiprocess_mode="livemostrecent"
)
OUTBOX_BROKER_DATA_LOST = Counter(
    "sellthrough_outbox_broker_data_lost_total",
    "Times the relay found the broker had lost published records and queued the outbox rows kept again.",
    ["service"],
)
OUTBOX_RESENT = Counter(
    "sellthrough_outbox_resent_total",
    "Published outbox rows sent again because a read-back after a republish could not find them.",
    ["service"],
)
OUTBOX_PUBLISH_SECONDS = Histogram(
    "sellthrough_outbox_publish_seconds", "Time to publish one outbox batch with acks=all.", ["service"]
)
RETENTION_PRUNED = Counter(
    "sellthrough_retention_pruned_rows_total",
    "Rows deleted by retention once older than their window (retention.py).",
    ["service", "table"],
)
CONSUMER_APPLIED = Counter(
    "sellthrough_consumer_events_applied_total", "Events applied by a consumer.", ["group", "topic", "partition"]
)
CONSUMER_SKIPPED_DUPLICATES = Counter(
    "sellthrough_consumer_duplicates_total", "Redelivered events recognised and skipped.", ["group"]
)
CONSUMER_BATCH_SIZE = Histogram(
    "sellthrough_consumer_batch_size",
    "Records per applied batch.",
    ["group"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
CONSUMER_BATCH_SECONDS = Histogram("sellthrough_consumer_batch_seconds", "Time to apply one batch.", ["group"])
CONSUMER_LAG = Gauge(
    "sellthrough_consumer_lag",
    "Partition end offset minus the next offset stored.",
    ["group", "topic", "partition"],
    multiprocess_mode="livemostrecent",
)
PROJECTION_FRESHNESS = Gauge(
    "sellthrough_projection_freshness_seconds",
    "Now minus the newest applied event's occurred_at (clock=occurred) or recorded_at (clock=recorded).",
    ["group", "clock"],
)
CONSUMER_REREADS = Counter(
    "sellthrough_consumer_partition_rereads_total",
    "Partitions a consumer read again: from the start because the log it had read was rebuilt (log_rebuilt) or "
    "because it starved twice without progress (starved_again), from the stored offset because it delivered "
    "nothing while records waited (starved).",
    ["group", "topic", "reason"],
)
DEAD_LETTERS = Counter("sellthrough_dead_letters_total", "Records sent to the dead-letter table.", ["group", "reason"])
RATE_LIMITED = Counter(
    "sellthrough_rate_limited_total",
    "Requests refused with 429 because the token used up its rate limit.",
    ["service", "role"],
)
RECONCILIATION_POSITIONS_DIFFERING = Gauge(
    "sellthrough_reconciliation_positions_differing",
    "Distributor x SKU positions whose book stock, rebuilt by query-api from its own facts, differed from the stock "
    "ledger's on-hand at two checks in a row with nothing applied between them: a bug in one of the two services.",
    multiprocess_mode="livemostrecent",
)
RECONCILIATION_DIFFERENCE_UNITS = Gauge(
    "sellthrough_reconciliation_difference_units",
    "Units by which those positions differ, summed as absolute values.",
    multiprocess_mode="livemostrecent",
)
COSTLY_READS = Counter(
    "sellthrough_costly_reads_total",
    "Answers of costly reads (costly_reads.py) by outcome: hit (served from the cache), shared (joined an "
    "identical computation under way), computed, or busy (refused with 503: too many computations already).",
    ["service", "read", "outcome"],
)
