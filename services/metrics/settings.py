"""metrics settings (env prefix METRICS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="METRICS_", env_nested_delimiter="__")

    port: int = 8004
    dedup_window: int = Field(200_000, ge=1, description="recent event ids remembered")
    pair_memory: int = Field(
        1_000_000,
        ge=0,
        description="handoff -> (from, to) remembered from events, for rework and ratings of "
        "handoffs no longer in the status table",
    )
