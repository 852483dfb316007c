"""Configuration read from the environment, never from code. One object per process, built at start-up."""

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sellthrough_runtime.kafka_security import KafkaSecuritySettings
from sellthrough_runtime.ratelimit import parse_rate_limit

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class ServiceSettings(KafkaSecuritySettings, BaseSettings):
    """Settings every service shares. Variables: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL,
    KAFKA_SSL_*, KAFKA_SASL_* (sellthrough_runtime.kafka_security), SELLTHROUGH_*."""

    model_config = SettingsConfigDict(env_prefix="SELLTHROUGH_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias="DATABASE_URL",
        description="PostgreSQL URL; every service keeps its tables in its own schema.",
    )
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    tokens_file: Path | None = Field(
        default=None, description="JSON file of API tokens (sha256 hashes, roles, subjects); see docs."
    )
    token_refresh_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="How often each process re-reads the tokens it has seen from the token store: revocations and "
        "rotations take effect within this time on every worker and replica.",
    )
    token_negative_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a token found in no store is refused without asking the database."
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL of an OpenID Connect provider: bearer JWTs are verified against its keys."
    )
    oidc_issuer: str | None = Field(default=None, description="The `iss` every JWT must carry (required with OIDC).")
    oidc_audience: str | None = Field(default=None, description="The `aud` every JWT must name (required with OIDC).")
    oidc_algorithms: list[str] = Field(
        default=["RS256", "ES256"], description="Signature algorithms accepted: asymmetric ones only."
    )
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp, nbf, iat.")
    oidc_jwks_cache_seconds: float = Field(default=300, gt=0, description="How long fetched signing keys are kept.")
    oidc_role_claim: str = Field(default="role", description="Claim naming the Sellthrough role (a.b for nested).")
    oidc_subject_claim: str = Field(default="sub", description="Claim holding the subject (rep id, person id...).")
    oidc_device_claim: str = Field(default="device_id", description="Claim holding the device id, if any.")
    oidc_distributors_claim: str = Field(default="distributors", description="Claim: a connector's distributors.")
    oidc_geo_ids_claim: str = Field(default="geo_ids", description="Claim: a regional manager's zones or regions.")
    business_timezone: str = Field(default="UTC", description="Time zone whose calendar days sales roll up into.")
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_connect_timeout_s: float = Field(
        default=5, gt=0, description="Opening a connection gives up after this, so a request fails fast (503)."
    )
    db_acquire_timeout_s: float = Field(
        default=10, gt=0, description="Waiting for a free pooled connection gives up after this (503, not a hang)."
    )
    db_command_timeout_s: float = Field(default=60, gt=0, description="One statement gives up after this.")
    rate_limit_rep: str = Field(
        default="600/minute",
        description="Requests per token of a rep ('N/second|minute|hour', or 'unlimited'); a batch of events "
        "posted weighs its events.",
    )
    rate_limit_analyst: str = Field(
        default="1200/minute", description="Per analyst token: a dashboard view fans out into several reads."
    )
    rate_limit_connector: str = Field(
        default="60000/minute",
        description="Per connector token, in events (a batch weighs its events): ERP back-fills.",
    )
    rate_limit_distributor: str = Field(default="1200/minute", description="Per distributor login.")
    rate_limit_regional_manager: str = Field(
        default="1200/minute", description="Per regional manager token: a dashboard view fans out into several reads."
    )
    rate_limit_admin: str = Field(
        default="300000/minute",
        description="Per admin token, in events: finite, yet far above what `make dev` posts loading its demo brand "
        "(one client, batches of 500, a few thousand events a second). 'unlimited' for load tests (bench/).",
    )
    costly_read_ttl_s: float = Field(
        default=30, gt=0, description="How long a cached costly read's answer (query-api's anomalies) is served."
    )
    costly_read_max_entries: int = Field(default=256, ge=1, description="Answers kept per costly read.")
    costly_read_max_concurrent: int = Field(
        default=2, ge=1, description="Costly reads computed at once per process; more wait for a free slot."
    )
    costly_read_max_wait_s: float = Field(
        default=10, gt=0, description="Waiting for a free slot gives up after this (503 with Retry-After)."
    )
    kafka_session_timeout_ms: int = Field(
        default=6000, ge=1000, description="How soon a crashed consumer's partitions move to another member."
    )
    kafka_rebalance_timeout_ms: int = Field(default=5000, ge=1000, description="How long members get to rejoin.")
    kafka_fetch_max_wait_ms: int = Field(
        default=20,
        ge=1,
        le=500,
        description="Longest a consumer's fetch waits at the broker for records (fetch.max.wait.ms). Kept small for "
        "freshness: Tansu holds every fetch for this long (half of it from 250 ms on) even when records are "
        "waiting, and Kafka answers at once when they are, so it bounds the wait of the first record of a lull; "
        "an idle consumer then asks about this often. See docs/broker-behaviour.md.",
    )
    consumer_batch_max: int = Field(default=2000, ge=1, description="Most records applied in one transaction.")
    retention_outbox_days: float = Field(
        default=7,
        ge=1,
        description="Published outbox rows are kept this long (retention.py): a broker that lost its data is refilled "
        "from them, so it bounds both what a republish sends and how long a loss may go unnoticed or a consumer "
        "lag behind and still recover. See docs/retention.md.",
    )
    retention_processed_events_days: float | None = Field(
        default=None,
        description="Applied event ids are kept this long; unset keeps them all. Safe only when no copy older than "
        "this can be read again: at least the outbox window plus a day, and at least the topics' own retention "
        "(a consumer may re-read a partition from its start). See docs/retention.md.",
    )
    retention_interval_s: float = Field(default=300, gt=0, description="Time between two pruning rounds.")
    retention_batch_rows: int = Field(default=10_000, ge=1, description="Most rows one pruning statement deletes.")
    retention_max_batches: int = Field(
        default=100,
        ge=1,
        description="Most pruning statements per table and round: a backlog is worked off over rounds.",
    )
    log_level: str = "INFO"

    @field_validator("business_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone, at start-up rather than on the first event
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        # A shared-secret (HS*) or unsigned ("none") algorithm would let anyone holding the secret, or anyone at
        # all, mint tokens; the provider's public keys can only verify.
        refused = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if refused or not value:
            raise ValueError(f"only asymmetric algorithms are accepted ({sorted(ASYMMETRIC_ALGORITHMS)}): {refused}")
        return value

    @model_validator(mode="after")
    def _processed_ids_outlive_the_outbox(self) -> "ServiceSettings":
        # A republished copy of an event can arrive as long as its outbox row is kept, and a little later.
        processed = self.retention_processed_events_days
        if processed is not None and processed < self.retention_outbox_days + 1:
            raise ValueError(
                "SELLTHROUGH_RETENTION_PROCESSED_EVENTS_DAYS must be at least SELLTHROUGH_RETENTION_OUTBOX_DAYS + 1"
            )
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> "ServiceSettings":
        if self.oidc_jwks_url and not (self.oidc_issuer and self.oidc_audience):
            raise ValueError("SELLTHROUGH_OIDC_JWKS_URL needs SELLTHROUGH_OIDC_ISSUER and SELLTHROUGH_OIDC_AUDIENCE")
        return self

    @field_validator(
        "rate_limit_rep",
        "rate_limit_analyst",
        "rate_limit_connector",
        "rate_limit_distributor",
        "rate_limit_regional_manager",
        "rate_limit_admin",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)  # raises for a malformed limit, at start-up rather than on the first request
        return value

    @property
    def rate_limits(self) -> dict[str, str]:
        """The limit of each role, by role name."""
        return {
            "rep": self.rate_limit_rep,
            "analyst": self.rate_limit_analyst,
            "connector": self.rate_limit_connector,
            "distributor": self.rate_limit_distributor,
            "regional_manager": self.rate_limit_regional_manager,
            "admin": self.rate_limit_admin,
        }

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.business_timezone)
