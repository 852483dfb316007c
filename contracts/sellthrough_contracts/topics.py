"""Kafka topics and which event types travel on each."""

from dataclasses import dataclass

DISTRIBUTOR_PARTITIONS = 12
"""Partitions of the topics keyed by distributor id (trade, stock, scheme results, field checks): room for up to 12
consumer members per group. 40 distributors hash onto 12 partitions unevenly (murmur2, as every Kafka client
partitions; the demo brand: 1 to 6 distributors a partition), yet members still get ranges of partitions, not
single ones; measured in docs/benchmarks.md (scale-out). A deployment sets its own counts where it creates the
topics (helm `topics`, compose `TOPICS`, `ensure_topics(partitions=...)`); the services learn them from the
broker. An existing topic keeps its count: adding partitions would move distributors between partitions."""


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    event_types: frozenset[str]
    description: str


REFERENCE = Topic(
    name="sellthrough.reference.v1",
    partitions=3,
    event_types=frozenset(
        {
            "GeographyDefined",
            "DistributorRegistered",
            "OutletRegistered",
            "OutletGeotagged",
            "SkuRegistered",
            "RepRegistered",
        }
    ),
    description="Master data upserts, keyed by the entity id.",
)

TRADE = Topic(
    name="sellthrough.trade.v1",
    partitions=DISTRIBUTOR_PARTITIONS,
    event_types=frozenset(
        {
            "OrderCaptured",
            "PrimaryInvoiced",
            "RetailerInvoiced",
            "StockCounted",
            "OrderDelivered",
            "OrderCancelled",
            "ReturnRecorded",
            "StockAdjusted",
            "VisitRecorded",
            "BeatPlanned",
            "DayStarted",
            "DayEnded",
        }
    ),
    description="Orders, visits, deliveries, invoices, returns, counts and adjustments, keyed by distributor id so "
    "each distributor's events stay in order; beat plans and attendance (field.py), keyed by rep id.",
)

STOCK = Topic(
    name="sellthrough.stock.v1",
    partitions=DISTRIBUTOR_PARTITIONS,
    event_types=frozenset({"StockPositionChanged", "StockVarianceRecorded", "StockAlertRaised"}),
    description="Derived by stock-ledger: positions, count variances and alerts, keyed by distributor id.",
)

SCHEMES = Topic(
    name="sellthrough.schemes.v1",
    partitions=3,
    event_types=frozenset({"SchemeLaunched", "SchemeAmended", "SchemeEnded", "SchemeClaimSubmitted"}),
    description="Trade scheme definitions and their changes, and distributors' claims, keyed by scheme id.",
)

SCHEME_RESULTS = Topic(
    name="sellthrough.scheme-results.v1",
    partitions=DISTRIBUTOR_PARTITIONS,
    event_types=frozenset({"SchemeApplied", "ClaimAssessed"}),
    description="Derived by scheme-engine: benefits granted per order and claim assessments, keyed by distributor id.",
)

FIELD_CHECKS = Topic(
    name="sellthrough.field-checks.v1",
    partitions=DISTRIBUTOR_PARTITIONS,
    event_types=frozenset({"LocationChecked"}),
    description="Derived by order-capture: the location verdict of each accepted order and visit, keyed by "
    "distributor id.",
)

TOPICS: tuple[Topic, ...] = (REFERENCE, TRADE, STOCK, SCHEMES, SCHEME_RESULTS, FIELD_CHECKS)

DERIVED_EVENT_TYPES = STOCK.event_types | SCHEME_RESULTS.event_types | FIELD_CHECKS.event_types
"""Produced only by their owning service (stock-ledger, scheme-engine, order-capture), each on its own topic:
never accepted over HTTP, and not applied from any other topic."""

_TOPIC_BY_EVENT_TYPE = {event_type: topic for topic in TOPICS for event_type in topic.event_types}


def topic_for(event_type: str) -> Topic:
    """The topic an event type is published on. Raises KeyError for a type no topic carries."""
    return _TOPIC_BY_EVENT_TYPE[event_type]
