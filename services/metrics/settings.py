"""metrics settings (env prefix METRICS_)."""

from __future__ import annotations

from pydantic import Field, model_validator
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
    shards: int = Field(
        1,
        ge=1,
        le=64,
        description="metrics instances the pairs are split between (each exposes its share)",
    )
    shard: int = Field(0, ge=0, description="this instance's share, 0 .. shards-1")

    @model_validator(mode="after")
    def _shard_in_range(self) -> Settings:
        if self.shard >= self.shards:
            raise ValueError(f"METRICS_SHARD={self.shard} needs METRICS_SHARDS > {self.shard}")
        return self
