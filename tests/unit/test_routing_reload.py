"""Applying a map change without a restart (POST /v1/map/reload, SIGHUP), and reading past
versions back: who changed what, when (GET /v1/map/versions, /v1/routes/{id}/versions).
The map topic is the real wire format, in memory."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

import builders as b
from routing.adapters.mapfile import read_map_file
from routing.domain.processmap import InvalidProcessMap
from routing.handlers import MapKeeper, Provenance
from routing.main import SighupReload, create_app
from routing.queries import MapQueries
from routing.settings import DEFAULT_MAP, Settings
from shared.auth import ApiKey, Scope
from shared.clock import FakeClock
from support import wait_for

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
READER = "reader-key-0123456789"
HEARTBEAT = "P1: {response: 2s, resolution: 4s}"


@pytest.fixture
async def routing(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Path, FakeClock]]:
    path = tmp_path / "process-map.yaml"
    path.write_text(DEFAULT_MAP.read_text())
    keys = [*b.ADMIN_KEYS, ApiKey(name="reader", key=READER, scopes=[Scope.READ])]
    clock = FakeClock(NOW)
    app = create_app(Settings(process_map=path, api_keys=keys), clock)
    store = b.MemoryMapTopic()
    origin = Provenance(str(path), revision="c0ffee1", author="An Peeters")
    keeper = MapKeeper(app.state.maps, store, clock, origin, lambda: read_map_file(path))
    app.state.keeper = keeper
    app.state.queries = MapQueries(app.state.maps, store)
    await keeper.put(read_map_file(path))
    yield app, path, clock


def client(app: FastAPI, key: str = b.TEST_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://routing",
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_reload_puts_an_edited_file_in_force_with_the_next_standard_version(
    routing: tuple[FastAPI, Path, FakeClock],
) -> None:
    app, path, clock = routing
    path.write_text(path.read_text().replace(HEARTBEAT, "P1: {response: 3s, resolution: 6s}"))
    clock.advance(timedelta(hours=1))
    async with client(app) as c:
        answer = await c.post("/v1/map/reload")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == 2 and body["published"] is True
        assert body["revision"] == "c0ffee1" and body["author"] == "An Peeters"
        assert body["standards"] == [
            {"route_id": "heartbeat", "change": "changed", "version": 2, "previous_version": 1}
        ]
        assert body["changes"]["changed"] == 1 and body["changes"]["new"] == 0
        served = (await c.get("/v1/routes/heartbeat")).json()
        assert served["standard"]["version"] == 2
        assert served["standard"]["targets"]["P1"]["response"] == "3s"
        again = (await c.post("/v1/map/reload")).json()
        assert again["version"] == 2 and again["published"] is False


async def test_reload_of_a_broken_file_lists_every_error_and_keeps_the_map_in_force(
    routing: tuple[FastAPI, Path, FakeClock],
) -> None:
    app, path, _ = routing
    path.write_text(
        path.read_text()
        .replace("calendar: fr-payroll", "calendar: fr-office")
        .replace("response: 2s", "response: 1d")
    )
    async with client(app) as c:
        answer = await c.post("/v1/map/reload")
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        fields = {e["field"] for e in answer.json()["errors"]}
        assert "processes.payroll.calendar" in fields
        assert any(f.endswith(".standard.targets.P1.response") for f in fields)
        assert "the map in force stays" in answer.json()["detail"]
        assert (await c.get("/v1/map")).json()["version"] == 1


async def test_reload_needs_the_admin_scope(routing: tuple[FastAPI, Path, FakeClock]) -> None:
    app, _, _ = routing
    async with client(app, READER) as c:
        answer = await c.post("/v1/map/reload")
        assert answer.status_code == 403


async def test_past_versions_of_a_standard_stay_readable_with_who_and_when(
    routing: tuple[FastAPI, Path, FakeClock],
) -> None:
    app, path, clock = routing
    original = path.read_text()
    async with client(app) as c:
        clock.advance(timedelta(hours=1))
        path.write_text(original.replace(HEARTBEAT, "P1: {response: 3s, resolution: 6s}"))
        assert (await c.post("/v1/map/reload?revision=d00d2&author=Bo")).status_code == 200
        clock.advance(timedelta(hours=1))
        without = original.split("  - id: heartbeat")[0]
        path.write_text(without)
        assert (await c.post("/v1/map/reload")).status_code == 200

    async with client(app, READER) as c:
        versions = (await c.get("/v1/map/versions")).json()
        assert versions["in_force"] == 3
        assert [v["version"] for v in versions["versions"]] == [3, 2, 1]
        newest = versions["versions"][0]
        assert newest["author"] == "An Peeters" and newest["revision"] == "c0ffee1"
        assert newest["changes"]["removed"] == 1
        assert newest["published_at"] == "2026-03-02T11:00:00Z"

        history = (await c.get("/v1/routes/heartbeat/versions")).json()
        assert history["in_force"] is False
        first, second = history["versions"]
        assert (first["version"], first["map_version"], first["until_map_version"]) == (1, 1, 2)
        assert first["ended"] == "changed"
        assert first["route"]["standard"]["targets"]["P1"]["response"] == "2s"
        assert (second["version"], second["map_version"], second["until_map_version"]) == (2, 2, 3)
        assert second["ended"] == "removed"
        assert second["route"]["standard"]["targets"]["P1"]["response"] == "3s"
        assert second["published_at"].startswith("2026-03-02T10:00:00")
        assert (second["revision"], second["author"]) == ("d00d2", "Bo")

        kept = (await c.get("/v1/routes/pick-request/versions")).json()
        assert kept["in_force"] is True and len(kept["versions"]) == 1
        assert (await c.get("/v1/routes/never-was/versions")).status_code == 404


async def test_sighup_reloads_the_map_file(routing: tuple[FastAPI, Path, FakeClock]) -> None:
    app, path, _ = routing
    hangup = SighupReload(app.state.keeper, app.state.maps)
    hangup.install()
    try:
        path.write_text(path.read_text().replace(HEARTBEAT, "P1: {response: 3s, resolution: 6s}"))
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(
            lambda: app.state.maps.current.version == 2, within=10.0, what="the SIGHUP reload"
        )
        await wait_for(lambda: hangup.finished == 1, within=10.0, what="the reload to end")
        path.write_text("routes: [")  # broken: logged, and the map in force stays
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: hangup.finished == 2, within=10.0, what="the failed reload")
        assert app.state.maps.current.version == 2
    finally:
        await hangup.remove()


def test_a_map_file_over_the_size_limit_fails_start_up_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(DEFAULT_MAP.read_text() + "#" * 4096)
    limit = len(DEFAULT_MAP.read_bytes())
    with pytest.raises(InvalidProcessMap) as caught:
        create_app(Settings(process_map=path, api_keys=b.ADMIN_KEYS, max_map_bytes=limit))
    (error,) = caught.value.errors
    assert error.path == "(file)"
    assert error.reason == (
        f"{limit + 4096} bytes, over the limit of {limit} (ROUTING_MAX_MAP_BYTES)"
    )
