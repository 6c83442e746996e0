"""`baton-service <intake|routing|sla|metrics>`: run one service, as the container image does.

The service's own settings (env prefix `INTAKE_`, `ROUTING_`, `SLA_`, `METRICS_`) give the host,
port and log level, so the port a deployment configures is the port the process listens on.
Invalid settings stop the process at once with every reason listed (exit status 2), before
anything is started; so does a configuration the service refuses while being built (no API
keys, an invalid process map: a ValueError from `create_app`), with its message, no traceback.

`baton-service probe` is the image's HEALTHCHECK: exit 0 when `/health/live` of the service
this container runs answers 200. The runner writes the URL to probe into
`$TMPDIR/baton-service.health` when it starts, so the probe needs no argument.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from shared.settings import ServiceSettings

SERVICES = ("intake", "routing", "sla", "metrics")
PROBE_TIMEOUT_S = 2.0


def health_file() -> Path:
    """Where the runner leaves the URL the probe checks (one service per container)."""
    return Path(tempfile.gettempdir()) / "baton-service.health"


def live_url(host: str, port: int) -> str:
    """The `/health/live` URL of a service listening on host:port, seen from the same host."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/health/live"


def load_settings(service: str) -> ServiceSettings:
    """The service's Settings, read from the environment (raises ValidationError)."""
    module = importlib.import_module(f"{service}.settings")
    settings: ServiceSettings = module.Settings()
    return settings


def serve(service: str) -> int:
    """Validate the service's settings, then run it with uvicorn until SIGTERM/SIGINT."""
    try:
        settings = load_settings(service)
    except ValidationError as exc:
        print(f"{service}: invalid settings, not started\n{exc}", file=sys.stderr)
        return 2
    try:
        health_file().write_text(live_url(settings.host, settings.port))
    except OSError as exc:  # a read-only file system: only the image's HEALTHCHECK needs it
        print(f"{service}: cannot write {health_file()} ({exc}); probe disabled", file=sys.stderr)
    create_app = importlib.import_module(f"{service}.main").create_app

    def build() -> Any:
        # The settings built above, so the environment is read and validated once; uvicorn
        # calls this factory inside its event loop.
        try:
            return create_app(settings)
        except ValueError as exc:
            print(f"{service}: not started: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    uvicorn.run(
        build,
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def probe() -> int:
    """Exit status 0 when the service of this container answers `/health/live` with 200."""
    try:
        url = health_file().read_text().strip()
    except OSError:
        print("no service started in this container yet", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            status = int(response.status)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="baton-service",
        description="Run one Baton service (settings from its environment), or probe it.",
    )
    parser.add_argument(
        "command", choices=[*SERVICES, "probe"], help="the service to run, or probe"
    )
    args = parser.parse_args(argv)
    if args.command == "probe":
        return probe()
    return serve(args.command)


if __name__ == "__main__":
    raise SystemExit(main())
