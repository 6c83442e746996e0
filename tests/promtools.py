"""Debian's promtool and amtool (deploy/system-deps.sh installs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tool(name: str) -> Path:
    """A Prometheus/Alertmanager binary; fails (never skips) when it is missing."""
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} not found: run `make deps` (deploy/system-deps.sh)")
    return Path(found)


def run(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a tool; the result carries stdout and stderr for assertion messages."""
    return subprocess.run(
        [str(tool(name)), *map(str, args)], capture_output=True, text=True, timeout=300
    )
