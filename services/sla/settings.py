"""sla settings (env prefix SLA_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", env_nested_delimiter="__")

    port: int = 8003
    closed_retention_s: int = Field(
        86400, ge=0, description="how long a completed/cancelled handoff stays queryable"
    )
    orphan_retention_s: int = Field(
        86400, ge=1, description="how long events wait for their handoff's opening event"
    )
    history_idle_s: int = Field(
        60,
        ge=1,
        description="how long a partition's history stays quiet before its stream time moves "
        "to now (the open clocks of a backfill are then decided)",
    )
    max_records: int = Field(200, ge=1, le=5000, description="input records per transaction")
