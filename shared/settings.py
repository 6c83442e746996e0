"""The settings base every service extends: Kafka connection, HTTP, logging, from the environment.

Each service has one `Settings(ServiceSettings)` with its own env prefix (`SLA_`, `INTAKE_`, ...);
nested groups use `__` (`SLA_KAFKA__BOOTSTRAP_SERVERS`). Nothing reads the environment at import
time: `Settings()` is built in `create_app` and validated there, so a bad value fails at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import ApiKey, RateLimit
from shared.topics import DEFAULT_HISTORY_RETENTION_DAYS, Topics


class KafkaSettings(BaseModel):
    """How to reach the cluster (12-factor: all from the environment, security included)."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("", description="namespace for every topic of this deployment")
    partitions: int = Field(6, ge=1, le=1000, description="partitions of the handoff topics")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    request_timeout_ms: int = 15000
    history_retention_days: int = Field(
        DEFAULT_HISTORY_RETENTION_DAYS,
        ge=1,
        le=100_000,
        description="retention of handoff.routed.v1 and sla.decisions.v1, which the metrics "
        "service's report store is rebuilt from (topics are created with it)",
    )

    def group(self, service: str) -> str:
        """The consumer group (and transactional-id stem) of a service in this deployment:
        namespaced like the topics, so two deployments on one cluster never share a group."""
        return f"{self.topic_prefix}{service}"

    @property
    def topics(self) -> Topics:
        """The concrete topic names of this deployment."""
        return Topics(
            prefix=self.topic_prefix,
            partitions=self.partitions,
            history_retention_days=self.history_retention_days,
        )


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set `model_config` with their env prefix."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: KafkaSettings = KafkaSettings()
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description='JSON list: [{"name": "erp", "key_sha256": "...", "processes": ["sales"]}]',
    )
    rate_limit: RateLimit | None = Field(
        None, description='default per-key limit, e.g. {"per_second": 200, "burst": 400}'
    )
    metrics_token: SecretStr | None = Field(
        None, description="when set, /metrics asks for 'Authorization: Bearer <token>'"
    )
