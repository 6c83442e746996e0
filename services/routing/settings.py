"""routing settings (env prefix ROUTING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
