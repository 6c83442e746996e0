"""The settings base every service extends: Kafka connection, HTTP, logging, from the environment.

Each service has one `Settings(ServiceSettings)` with its own env prefix (`SLA_`, `INTAKE_`, ...);
nested groups use `__` (`SLA_KAFKA__BOOTSTRAP_SERVERS`). Nothing reads the environment at import
time: `Settings()` is built in `create_app` and validated there, so a bad value fails at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.auth import ApiKey, RateLimit
from shared.topics import DEFAULT_HISTORY_RETENTION_DAYS, Topics


class KafkaSettings(BaseModel):
    """How to reach the cluster (12-factor: all from the environment, security included)."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("", description="namespace for every topic of this deployment")
    partitions: int = Field(6, ge=1, le=1000, description="partitions of the handoff topics")
    replication_factor: int = Field(
        1, ge=1, le=32, description="replicas of every topic Baton creates (3 on a cluster)"
    )
    min_insync_replicas: int = Field(
        1,
        ge=1,
        le=32,
        description="replicas that must acknowledge a write (acks=all) for it to succeed; "
        "2 with a replication factor of 3 keeps writing while one broker is down",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: FilePath | None = Field(
        None, description="PEM CA bundle the broker certificates are checked against"
    )
    ssl_certfile: FilePath | None = Field(None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: FilePath | None = Field(None, description="PEM key of ssl_certfile")
    request_timeout_ms: int = 15000
    history_retention_days: int = Field(
        DEFAULT_HISTORY_RETENTION_DAYS,
        ge=1,
        le=100_000,
        description="retention of handoff.routed.v1 and sla.decisions.v1, which the metrics "
        "service's report store is rebuilt from (topics are created with it)",
    )

    @model_validator(mode="after")
    def _security_consistent(self) -> KafkaSettings:
        # Caught here, at start-up, instead of by a client failing to connect in the background.
        protocol = self.security_protocol
        sasl = protocol.startswith("SASL")
        if sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {protocol} needs sasl_username and sasl_password "
                "(KAFKA__SASL_USERNAME, KAFKA__SASL_PASSWORD)"
            )
        if not sasl and (self.sasl_mechanism or self.sasl_username or self.sasl_password):
            raise ValueError(f"SASL settings are given but security_protocol is {protocol}")
        tls_files = (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)
        if protocol not in ("SSL", "SASL_SSL") and any(f is not None for f in tls_files):
            raise ValueError(f"TLS files are given but security_protocol is {protocol}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile is the key of ssl_certfile, which is not set")
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas {self.min_insync_replicas} is more than the "
                f"replication_factor {self.replication_factor}: no write could ever succeed"
            )
        return self

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
            replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas,
        )


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set `model_config` with their env prefix."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG adds a line per HTTP request, per event handled, per decision"
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line (containers); text: key=value lines"
    )
    tracing: bool = Field(
        False,
        description="OpenTelemetry spans (also on when OTEL_TRACES_EXPORTER or "
        "OTEL_EXPORTER_OTLP_ENDPOINT asks for an exporter; OTEL_SDK_DISABLED=true keeps it off)",
    )
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
