"""metrics settings (env prefix METRICS_)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from metrics.domain.reports import zone
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
    history_path: str = Field(
        ".run/metrics-history.duckdb",
        description="the report store's DuckDB file (':memory:' for tests); opened by shard 0 only",
    )
    history_keep_days: int = Field(
        400,
        ge=1,
        le=100_000,
        description="history older than this is deleted from the report store (daily); keep "
        "KAFKA__HISTORY_RETENTION_DAYS at least as long to rebuild it all from Kafka",
    )
    sla_url: str = Field(
        "http://127.0.0.1:8003",
        description="the sla service's base URL: reports link each late handoff to its status",
    )
    report_timezone: str = Field(
        "UTC", description="IANA time zone calendar months and dates of reports are read in"
    )

    @field_validator("report_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value, "report_timezone")
        return value

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
