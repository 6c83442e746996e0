"""intake settings (env prefix INTAKE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """intake's settings: INTAKE_API_KEYS, INTAKE_KAFKA__..., and the door's limits."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", env_nested_delimiter="__")

    port: int = 8001
    max_batch: int = Field(1000, ge=1, le=10000, description="events per POST /v1/events")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="largest request body, refused before parsing"
    )
    max_event_bytes: int = Field(
        1_000_000,
        ge=1024,
        description="largest encoded event (a Kafka record; keep it at or under the broker's "
        "message.max.bytes and the producer's max_request_size)",
    )
    max_clock_skew_s: int = Field(300, ge=0, description="how far in the future occurred_at may be")
    kafka_timeout_s: float = Field(
        5.0, gt=0, le=120, description="longest wait for Kafka's acknowledgement before a 503"
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503")
    idempotency_cache_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="memory for remembered Idempotency-Key replies"
    )
    rejections_kept: int = Field(
        100_000, ge=100, description="dead letters held for GET /v1/rejections (newest kept)"
    )
