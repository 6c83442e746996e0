"""deploy/Dockerfile, checked without a Docker engine: hadolint, every COPY source exists and is
in the build context, the entrypoint is a real command, the ENV names real settings."""

from __future__ import annotations

import fnmatch
import importlib
import re
import tomllib

import pytest

from deploy_checks import (
    DOCKERFILE,
    REPO,
    SETTINGS,
    copies,
    env_names,
    env_prefix,
    instructions,
    json_args,
    run_tool,
    stage_env,
)
from shared import serve


def test_dockerfile_is_hadolint_clean() -> None:
    result = run_tool("hadolint", "--no-color", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    assert "*" in ignore, ".dockerignore is an allow-list: it starts by excluding everything"
    sources = [src for c in copies() if c.origin is None for src in c.sources]
    assert sources, "no COPY from the build context?"
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: no such path in the repository"
        assert any(src == a or src.startswith(a + "/") for a in allowed), (
            f"COPY {src}: excluded from the build context by .dockerignore"
        )
    for entry in allowed:
        assert (REPO / entry).exists(), f".dockerignore allows {entry}, which does not exist"
        assert any(s == entry or fnmatch.fnmatch(s, entry) for s in sources), (
            f".dockerignore allows {entry}, which no COPY uses"
        )


def test_copy_from_names_an_earlier_stage() -> None:
    stages = [
        m.group(1)
        for i in instructions()
        if i.keyword == "FROM" and (m := re.search(r"\bAS\s+(\S+)", i.args, re.I))
    ]
    for c in copies():
        if c.origin is not None:
            assert c.origin in stages, f"COPY --from={c.origin}: no such stage"


def test_image_installs_exactly_the_lock_without_the_dev_extra() -> None:
    runs = [i.args for i in instructions() if i.keyword == "RUN"]
    syncs = [r for r in runs if r.startswith("uv sync")]
    assert syncs, "the image must install with uv sync"
    for sync in syncs:
        words = sync.split()
        assert "--locked" in words, f"{sync}: must fail when uv.lock is stale"
        assert "--no-dev" in words, sync
        assert not any(w.startswith("--extra") or w == "--all-extras" for w in words), sync
    assert any("--no-editable" in s for s in syncs), "the runtime stage has no /src to link to"


def test_image_uses_the_makefiles_uv() -> None:
    makefile = (REPO / "Makefile").read_text()
    wanted = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert wanted is not None
    args = [i.args for i in instructions() if i.keyword == "ARG" and i.args.startswith("UV_")]
    assert args == [f"UV_VERSION={wanted.group(1)}"]


def test_entrypoint_is_the_baton_service_command_and_names_real_services() -> None:
    entry = [json_args(i.args) for i in instructions() if i.keyword == "ENTRYPOINT"]
    assert entry == [["baton-service"]]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["baton-service"].partition(":")
    assert (module, function) == ("shared.serve", "main")
    assert callable(serve.main)
    services = {p.parent.name for p in (REPO / "services").glob("*/main.py")}
    assert set(serve.SERVICES) == services == set(SETTINGS)
    for name in serve.SERVICES:
        assert callable(importlib.import_module(f"{name}.main").create_app)


def test_healthcheck_probes_through_the_entrypoint() -> None:
    checks = [i.args for i in instructions() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    command = json_args(checks[0].split("CMD", 1)[1].strip())
    assert command == ["baton-service", "probe"]
    with pytest.raises(SystemExit) as bad:
        serve.main(["no-such-command"])
    assert bad.value.code == 2


def test_image_runs_as_a_non_root_user() -> None:
    users = [i.args for i in instructions() if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_image_environment_names_real_settings() -> None:
    env = stage_env(-1)
    prefixes = {env_prefix(s): s for s in SETTINGS.values()}
    ours = {k: v for k, v in env.items() if any(k.startswith(p) for p in prefixes)}
    assert ours, "the image sets no service setting?"
    for key in ours:
        settings = next(s for p, s in prefixes.items() if key.startswith(p))
        assert key in env_names(settings), f"ENV {key}: not a setting of {settings.__module__}"
    for settings in SETTINGS.values():  # every service listens on all interfaces in a container
        assert env.get(f"{env_prefix(settings)}HOST") == "0.0.0.0"
    copied = {c.dest for c in copies() if c.origin is None}
    assert env["ROUTING_PROCESS_MAP"] in copied, "the image's process map is not where it points"


def test_exposed_ports_are_the_services_default_ports() -> None:
    exposed = {int(p) for i in instructions() if i.keyword == "EXPOSE" for p in i.args.split()}
    assert exposed == {s.model_fields["port"].default for s in SETTINGS.values()}
