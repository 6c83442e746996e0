"""`baton-service`: settings validated before anything starts, and the health probe."""

from __future__ import annotations

import http.server
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy_checks import environment
from shared import serve


@pytest.fixture
def tmpdir_for_probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def http_status() -> Iterator[tuple[list[int], int]]:
    """A local HTTP server answering the status in the list's first item; yields (list, port)."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/health/live" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield status, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8001/health/live"),
        ("127.0.0.1", "http://127.0.0.1:8001/health/live"),
        ("::", "http://[::1]:8001/health/live"),
        ("10.1.2.3", "http://10.1.2.3:8001/health/live"),
    ],
)
def test_probe_url_reaches_the_listening_address_from_inside_the_container(
    host: str, url: str
) -> None:
    assert serve.live_url(host, 8001) == url


def never_serve(app: object, **options: object) -> None:
    raise AssertionError("uvicorn must not start")


def build_only(app: Callable[[], object], **options: object) -> None:
    """uvicorn.run that only calls the factory, as uvicorn does first."""
    app()


def test_invalid_settings_stop_the_service_before_it_starts_naming_the_variable(
    capsys: pytest.CaptureFixture[str], tmpdir_for_probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve.uvicorn, "run", never_serve)
    with environment({"INTAKE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"}):
        assert serve.main(["intake"]) == 2
    err = capsys.readouterr().err
    assert "intake: invalid settings, not started" in err
    assert "KAFKA__SASL_PASSWORD" in err
    assert not serve.health_file().exists(), "nothing to probe for a service never started"


def test_a_service_that_refuses_its_configuration_exits_with_the_reason(
    capsys: pytest.CaptureFixture[str], tmpdir_for_probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve.uvicorn, "run", build_only)
    with environment({}), pytest.raises(SystemExit) as stopped:
        serve.main(["sla"])  # no SLA_API_KEYS: nobody could call it
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("sla: not started:") and "API_KEYS" in err
    assert "Traceback" not in err


def test_probe_fails_before_any_service_started(tmpdir_for_probe: Path) -> None:
    assert serve.main(["probe"]) == 1


def test_probe_follows_the_live_endpoint_of_the_started_service(
    tmpdir_for_probe: Path, http_status: tuple[list[int], int]
) -> None:
    status, port = http_status
    serve.health_file().write_text(serve.live_url("0.0.0.0", port))
    assert serve.main(["probe"]) == 0
    status[0] = 503
    assert serve.main(["probe"]) == 1


def test_probe_fails_when_nothing_listens(tmpdir_for_probe: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.health_file().write_text(serve.live_url("127.0.0.1", port))
    assert serve.main(["probe"]) == 1
