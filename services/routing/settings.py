"""routing settings (env prefix ROUTING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.mapwire import PART_BYTES
from shared.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAP = REPO_ROOT / "deploy" / "process-map.yaml"


class Settings(ServiceSettings):
    """routing's settings: ROUTING_PORT, ROUTING_PROCESS_MAP, ROUTING_KAFKA__..."""

    model_config = SettingsConfigDict(env_prefix="ROUTING_", env_nested_delimiter="__")

    port: int = 8002
    process_map: Path = Field(
        DEFAULT_MAP,
        description="the process map YAML (GitOps); a relative path is taken from the cwd",
    )
    max_map_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="largest process map, as a file or a POST /v1/map/validate body (bytes)",
    )
    map_revision: str = Field(
        "",
        max_length=200,
        description="the map's revision, recorded with each version (git commit)",
    )
    map_author: str = Field(
        "", max_length=200, description="who publishes the map, recorded with each version"
    )
    map_part_bytes: int = Field(
        PART_BYTES,
        ge=16 * 1024,
        le=900 * 1024,
        description="largest record of the map topic: a published map is cut into parts",
    )
    reload_on_sighup: bool = Field(True, description="SIGHUP re-reads the map, like POST reload")
    max_chain_depth: int = Field(
        20,
        ge=1,
        le=1000,
        description="handoffs routing opens one after the other along `next` steps, at most",
    )
    sla_url: str = Field(
        "http://127.0.0.1:8003",
        pattern=r"^https?://",
        description="base of the sla status links in notifications",
    )
    notifications: bool = Field(True, description="send webhook notifications (the outbox)")
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON name -> HMAC-SHA256 secret, e.g. {"warehouse": "..."}; '
        'a process signs with its notify.secret name or its id, "*" is the fallback',
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=120, description="per POST")
    webhook_attempts: int = Field(10, ge=1, le=30, description="POSTs before dead-lettering")
    webhook_backoff_s: float = Field(5.0, gt=0, le=3600, description="wait after a failure")
    webhook_backoff_max_s: float = Field(
        900.0, gt=0, le=86400, description="the wait doubles after each failure, up to this"
    )
    webhook_concurrency: int = Field(
        8, ge=1, le=256, description="POSTs in flight at once, a quarter of them to one receiver"
    )
