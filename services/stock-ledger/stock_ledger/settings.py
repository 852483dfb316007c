from pydantic import Field

from sellthrough_runtime.settings import ServiceSettings


class StockLedgerSettings(ServiceSettings):
    http_port: int = 8002
    demand_window_days: int = Field(
        default=28, ge=1, le=365, description="Days of secondary sales averaged into daily demand for days of cover."
    )
    max_cover_days: float = Field(default=45, gt=0, description="Overstock above this cover, unless the SKU sets one.")
    min_cover_days: float = Field(
        default=7, ge=0, description="Stock-out risk below this cover, unless the SKU sets one."
    )
    overstock_min_units: int = Field(
        default=12,
        ge=0,
        description="Never overstock at or below this many units on hand, whatever the cover (two units of a slow "
        "SKU are not overstock), unless the SKU sets its own.",
    )
    alert_reevaluation_seconds: float = Field(
        default=3600,
        ge=1,
        description="How often every position's alerts are evaluated again as the demand window slides with the clock.",
    )
