"""Helpers for the static checks of `deploy/`: which environment variables each service reads,
and running the validators installed in the virtualenv (hadolint, check-jsonschema, ...)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings

import intake.settings
import metrics.settings
import routing.settings
import sla.settings
from shared.admin import AdminSettings
from shared.auth import keyring_for
from shared.clock import FakeClock
from shared.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
DOCKERFILE = DEPLOY / "Dockerfile"

SETTINGS: dict[str, type[BaseSettings]] = {
    "intake": intake.settings.Settings,
    "routing": routing.settings.Settings,
    "sla": sla.settings.Settings,
    "metrics": metrics.settings.Settings,
}
"""Every service's Settings class, by service name (= the `baton-service` command)."""

TOPICS_SETTINGS: type[BaseSettings] = AdminSettings
"""What `python -m shared.admin topics` reads (prefix BATON_)."""


def env_prefix(settings: type[BaseSettings]) -> str:
    return str(settings.model_config.get("env_prefix", "")).upper()


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a Settings class reads: PREFIX_FIELD, and PREFIX_GROUP__FIELD
    for nested groups (pydantic-settings' env_nested_delimiter)."""
    prefix = env_prefix(settings)
    delimiter = str(settings.model_config.get("env_nested_delimiter") or "__")
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        names.add(f"{prefix}{name.upper()}")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(
                f"{prefix}{name.upper()}{delimiter}{sub.upper()}" for sub in annotation.model_fields
            )
    return names


def startable(settings: type[BaseSettings]) -> ServiceSettings:
    """Settings read from the environment, and past the start-up checks a service makes beyond
    its Settings class (a service nobody could call, without API keys, refuses to start)."""
    loaded = settings()
    assert isinstance(loaded, ServiceSettings)
    if settings is not TOPICS_SETTINGS:
        keyring_for(loaded.api_keys, FakeClock(), loaded.rate_limit)
    return loaded


def foreign_prefix(name: str, own: type[BaseSettings]) -> str | None:
    """The prefix of another service's settings that `name` carries, if any (a variable meant
    for routing set on the intake container is a mistake)."""
    for settings in (*SETTINGS.values(), TOPICS_SETTINGS):
        prefix = env_prefix(settings)
        if settings is not own and name.startswith(prefix):
            return prefix
    return None


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Run with exactly the Baton variables of `values` set (others of ours removed)."""
    ours = tuple(env_prefix(s) for s in (*SETTINGS.values(), TOPICS_SETTINGS))
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key.startswith(ours):
                del os.environ[key]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


_DEFAULT = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR}` with only the defaults: what
    the file gives when nothing is exported."""
    return _DEFAULT.sub(lambda m: m.group("default") or "", value).replace("$$", "$")


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a validator from the virtualenv (installed by the dev extra)."""
    path = BIN / tool
    assert path.exists(), f"{tool} is missing from {BIN}: make venv installs the dev extra"
    return subprocess.run([str(path), *args], capture_output=True, text=True, cwd=REPO)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(keyword.upper(), args.strip(), stage))
    return out


def json_args(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), args
    return [str(v) for v in value]


@dataclass(frozen=True)
class Copy:
    origin: str | None
    """the stage copied from (--from), None for the build context"""
    sources: list[str]
    dest: str
    stage: int


def copies() -> list[Copy]:
    """Every COPY of the Dockerfile."""
    out = []
    for ins in instructions():
        if ins.keyword != "COPY":
            continue
        words = shlex.split(ins.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        origin = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        out.append(Copy(origin, paths[:-1], paths[-1], ins.stage))
    return out


def stage_env(stage: int) -> dict[str, str]:
    """The ENV of one stage (-1: the last, the image people run)."""
    stages = sorted({i.stage for i in instructions()})
    wanted = stages[stage]
    env: dict[str, str] = {}
    for ins in instructions():
        if ins.keyword == "ENV" and ins.stage == wanted:
            env.update(dict(word.split("=", 1) for word in shlex.split(ins.args)))
    return env
