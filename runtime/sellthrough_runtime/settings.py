"""Configuration read from the environment, never from code. One object per process, built at start-up."""

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sellthrough_runtime.ratelimit import parse_rate_limit


class ServiceSettings(BaseSettings):
    """Settings every service shares. Variables: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, SELLTHROUGH_*."""

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
    consumer_batch_max: int = Field(default=2000, ge=1, description="Most records applied in one transaction.")
    log_level: str = "INFO"

    @field_validator("business_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone, at start-up rather than on the first event
        return value

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
