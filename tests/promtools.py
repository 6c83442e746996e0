"""Debian's Prometheus tools (deploy/system-deps.sh installs them): promtool and amtool runs,
Prometheus or Alertmanager as a test's own process, and a webhook receiver for Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from support import free_port, wait_for

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


class Webhook:
    """An Alertmanager webhook receiver: keeps every payload it is posted."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        received = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """Prometheus or Alertmanager as a process of this test, on its own port."""

    def __init__(self, binary: str, args: list[str], name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = REPO / ".run" / "test-logs" / f"{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(tool(binary)), *args, f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:

            async def probe() -> bool:
                if self.proc.poll() is not None:
                    raise AssertionError(f"exited; see {self.log}")
                try:
                    return (await client.get("/-/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(probe, within=60, what=f"{self.log.stem} ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
