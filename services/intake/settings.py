"""intake settings (env prefix INTAKE_)."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ApiKey(BaseModel):
    """One upstream system's key and the processes it may post for ("*" = all)."""

    name: str = Field(min_length=1)
    key: str | None = Field(None, min_length=16, description="the key itself (dev only)")
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="hex SHA-256")
    processes: list[str] = Field(default_factory=lambda: ["*"])
    admin: bool = False

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKey:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError(f"API key {self.name!r}: give exactly one of key / key_sha256")
        return self

    def digest(self) -> str:
        """The hex SHA-256 the key is matched by."""
        if self.key_sha256 is not None:
            return self.key_sha256
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).hexdigest()


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", env_nested_delimiter="__")

    port: int = 8001
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list: [{"name": "erp", "key_sha256": "...", "processes": ["sales"]}]',
    )
    max_batch: int = Field(1000, ge=1, le=10000, description="events per POST /v1/events")
    max_clock_skew_s: int = Field(300, ge=0, description="how far in the future occurred_at may be")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503")
    idempotency_cache: int = Field(100_000, ge=0, description="Idempotency-Key replies remembered")

    @model_validator(mode="after")
    def _keys_needed(self) -> Settings:
        if not self.api_keys:
            raise ValueError("INTAKE_API_KEYS is empty: no upstream system could post anything")
        return self
