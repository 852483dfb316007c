from pydantic import Field

from sellthrough_runtime.settings import ServiceSettings


class OrderCaptureSettings(ServiceSettings):
    http_port: int = 8001
    max_batch_events: int = Field(default=1000, ge=1, description="Most events one POST may carry.")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    http_workers: int = Field(
        default=2,
        ge=1,
        description="Processes serving HTTP (uvicorn workers) in one instance, each a full copy of the service: "
        "validation is CPU-bound Python, so one process uses one core at most. See sellthrough_runtime.workers.",
    )
    future_tolerance_seconds: int = Field(
        default=300, ge=0, description="How far ahead of server time a device clock may be before an event is refused."
    )
