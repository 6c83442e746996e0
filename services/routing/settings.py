"""routing settings (env prefix ROUTING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

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
        1_048_576, ge=1024, description="largest YAML body POST /v1/map/validate accepts"
    )
