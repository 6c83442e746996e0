"""routing's HTTP API without Kafka: the map is put in force by hand, as the lifespan would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from builders import ADMIN_KEYS, AUTH
from routing.adapters.mapfile import read_map_file
from routing.domain.processmap import InvalidProcessMap
from routing.domain.versioning import next_map
from routing.main import create_app
from routing.settings import DEFAULT_MAP, Settings
from shared.clock import FakeClock

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
YAML = {"content-type": "application/yaml"}


def make_app(process_map: Path = DEFAULT_MAP) -> FastAPI:
    return create_app(
        Settings(process_map=process_map, max_map_bytes=4096 * 16, api_keys=ADMIN_KEYS),
        FakeClock(NOW),
    )


def put_in_force(app: FastAPI, process_map: Path = DEFAULT_MAP) -> None:
    app.state.maps.install(next_map(read_map_file(process_map), None, now=NOW, source="test"))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = make_app()
    put_in_force(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing", headers=AUTH) as c:
        yield c


async def test_invalid_map_file_fails_start_up_listing_every_error(tmp_path: Path) -> None:
    broken = tmp_path / "map.yaml"
    broken.write_text(
        DEFAULT_MAP.read_text()
        .replace("calendar: fr-payroll", "calendar: fr-office")
        .replace("response: 2s", "response: 1d")
    )
    with pytest.raises(InvalidProcessMap) as caught:
        make_app(broken)
    message = str(caught.value)
    assert message.startswith(f"invalid process map {broken}: 2 error(s)")
    assert "processes.payroll.calendar: unknown calendar 'fr-office'" in message
    assert ".standard.targets.P1.response: invalid duration '1d'" in message


async def test_map_endpoints_answer_503_until_the_map_is_in_force() -> None:
    app = make_app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r", headers=AUTH
    ) as c:
        answer = await c.get("/v1/map")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "2"
        ready = await c.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "kafka": False,
            "process_map": False,
            "consumer": False,
            "decisions": False,
            "outbox": False,
        }
        assert (await c.get("/health/live")).status_code == 200


async def test_get_map_returns_the_versioned_map(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/map")).json()
    assert body["version"] == 1
    heartbeat = next(r for r in body["routes"] if r["id"] == "heartbeat")
    assert heartbeat["from"] == "service-desk" and heartbeat["to"] == "it-l2-network"
    assert heartbeat["standard"]["targets"]["P1"] == {"response": "2s", "resolution": "4s"}
    assert heartbeat["standard"]["calendar"]["always_open"] is True


async def test_processes_are_listed_in_map_order(client: httpx.AsyncClient) -> None:
    ids = [p["id"] for p in (await client.get("/v1/processes")).json()]
    assert ids[:3] == ["sales", "credit-control", "warehouse"]
    assert "payroll" in ids


async def test_process_shows_its_suppliers_and_internal_customers(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/processes/warehouse")).json()
    assert body["process"]["name"] == "Warehouse Antwerp"
    assert body["calendar"]["id"] == "be-warehouse"
    assert {s["process"]: [r["id"] for r in s["routes"]] for s in body["suppliers"]} == {
        "sales": ["pick-request"],
        "credit-control": ["released-order"],
    }
    assert [c["process"] for c in body["customers"]] == ["shipping"]
    assert body["downstream"] == ["shipping", "billing"]
    assert body["upstream"] == ["credit-control", "sales"]


async def test_unknown_process_and_route_are_404_problems(client: httpx.AsyncClient) -> None:
    for path in ("/v1/processes/nobody", "/v1/routes/nothing"):
        answer = await client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "Not found"


async def test_routes_filter_by_from_to_and_kind(client: httpx.AsyncClient) -> None:
    async def ids(**params: str) -> list[str]:
        answer = await client.get("/v1/routes", params=params)
        assert answer.status_code == 200
        return [r["id"] for r in answer.json()]

    assert await ids(**{"from": "service-desk", "kind": "incident"}) == [
        "incident-apps",
        "incident-network",
    ]
    assert await ids(to="payroll") == ["payroll-input", "payroll-input-hr", "new-hire"]
    assert await ids(**{"from": "hr", "to": "payroll", "kind": "new-hire"}) == ["new-hire"]
    assert await ids(kind="nothing") == []
    assert len(await ids()) == 18


async def test_route_by_id(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/routes/payroll-input")).json()
    assert body["standard"]["delivery"] == "16h"
    assert body["standard"]["calendar"]["id"] == "fr-payroll"


async def test_validate_summarises_a_valid_map_and_its_versions(
    client: httpx.AsyncClient,
) -> None:
    edited = DEFAULT_MAP.read_text().replace("response: 2s", "response: 3s")
    answer = await client.post("/v1/map/validate", content=edited, headers=YAML)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["valid"], body["processes"], body["routes"]) == (True, 11, 18)
    assert body["compared_with_version"] == 1
    heartbeat = next(s for s in body["standards"] if s["route_id"] == "heartbeat")
    assert heartbeat == {
        "route_id": "heartbeat",
        "change": "changed",
        "version": 2,
        "previous_version": 1,
    }
    assert {s["change"] for s in body["standards"] if s["route_id"] != "heartbeat"} == {"unchanged"}


async def test_validate_returns_422_with_every_path(client: httpx.AsyncClient) -> None:
    text = DEFAULT_MAP.read_text().replace("calendar: fr-payroll", "calendar: fr-office")
    text = text.replace("\n    to: billing\n", "\n    to: bililng\n")
    answer = await client.post(
        "/v1/map/validate", content=text, headers={"content-type": "text/plain; charset=utf-8"}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"] == [
        {
            "field": "processes.payroll.calendar",
            "reason": "unknown calendar 'fr-office' "
            "(known: be-office, be-warehouse, fr-payroll, 24x7)",
        },
        {
            "field": "routes[7].to",
            "reason": "unknown process 'bililng' (known: sales, credit-control, warehouse, "
            "shipping, billing, dept-managers, hr, payroll, service-desk, it-l2-apps, "
            "it-l2-network); did you mean 'billing'?",
        },
    ]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ("{}", {"content-type": "application/json"}, 415),
        ("calendars: {}", {}, 415),
        (b"\xff\xfe not utf-8", YAML, 400),
        ("x" * (4096 * 16 + 1), YAML, 413),
        ("", YAML, 422),
        ("- just\n- a list", YAML, 422),
        ("key: [unclosed", YAML, 422),
        ("&a [*a]", YAML, 422),
    ],
)
async def test_validate_answers_bad_bodies_with_a_problem(
    client: httpx.AsyncClient, body: str | bytes, headers: dict[str, str], status: int
) -> None:
    answer = await client.post("/v1/map/validate", content=body, headers=headers)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"


async def test_openapi_documents_the_yaml_body_and_the_problem_shape(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    validate = spec["paths"]["/v1/map/validate"]["post"]
    assert set(validate["requestBody"]["content"]) == {"application/yaml", "text/plain"}
    assert "422" in validate["responses"]
    assert {"/v1/map", "/v1/processes", "/v1/processes/{process_id}", "/v1/routes"} <= set(
        spec["paths"]
    )


async def test_metrics_preinitialise_every_rejection_reason(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    for reason in ("unknown-process", "unknown-kind", "no-route"):
        assert f'handoff_routing_rejected_total{{reason="{reason}"}} 0.0' in text
    assert "handoff_process_map_version 1.0" in text


READER_KEY = "grafana-read-key-0123456789"


def reader_app() -> FastAPI:
    from shared.auth import ApiKey, Scope

    keys = [*ADMIN_KEYS, ApiKey(name="grafana", key=READER_KEY, scopes=[Scope.READ])]
    app = create_app(Settings(api_keys=keys), FakeClock(NOW))
    put_in_force(app)
    return app


async def test_every_route_needs_a_key_and_health_and_metrics_do_not() -> None:
    app = reader_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        for path in ("/v1/map", "/v1/processes", "/v1/processes/payroll", "/v1/routes"):
            answer = await c.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["content-type"] == "application/problem+json"
        assert (await c.get("/health/live")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200


async def test_contact_details_are_shown_to_admin_keys_only() -> None:
    app = reader_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        as_reader = {"Authorization": f"Bearer {READER_KEY}"}
        shown = (await c.get("/v1/map", headers=as_reader)).text
        assert "@example.com" not in shown and "#payroll" not in shown
        assert "Claire Martin" in shown  # names stay: who to ask is not a secret
        detail = (await c.get("/v1/processes/payroll", headers=as_reader)).json()
        assert "email" not in detail["process"]["owner"]
        assert "claire.martin@example.com" in (await c.get("/v1/map", headers=AUTH)).text


async def test_map_validation_needs_the_admin_scope() -> None:
    app = reader_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        body = DEFAULT_MAP.read_bytes()
        as_reader = {"Authorization": f"Bearer {READER_KEY}", **YAML}
        refused = await c.post("/v1/map/validate", content=body, headers=as_reader)
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
        accepted = await c.post("/v1/map/validate", content=body, headers={**AUTH, **YAML})
        assert accepted.status_code == 200


async def test_metrics_can_require_a_bearer_token() -> None:
    app = create_app(Settings(api_keys=ADMIN_KEYS, metrics_token="scrape-secret"), FakeClock(NOW))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        assert (await c.get("/metrics")).status_code == 401
        ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200 and "handoff_" in ok.text


def test_a_service_without_keys_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="_API_KEYS"):
        create_app(Settings(), FakeClock(NOW))


def webhook_map(tmp_path: Path) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(
        DEFAULT_MAP.read_text().replace(
            '    owner: {name: Claire Martin, email: claire.martin@example.com, chat: "#payroll"}',
            "    owner: {name: Claire Martin, email: claire.martin@example.com, "
            'chat: "#payroll", webhook: "https://hooks.example.com/t0ken/claire"}\n'
            '    notify: {webhook: "https://hooks.example.com/t0ken/payroll"}',
        )
    )
    return path


async def test_webhooks_are_shown_to_admin_keys_only(tmp_path: Path) -> None:
    from shared.auth import ApiKey, Scope

    keys = [*ADMIN_KEYS, ApiKey(name="grafana", key=READER_KEY, scopes=[Scope.READ])]
    path = webhook_map(tmp_path)
    app = create_app(Settings(api_keys=keys, process_map=path), FakeClock(NOW))
    put_in_force(app, path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        as_reader = {"Authorization": f"Bearer {READER_KEY}"}
        for where in ("/v1/map", "/v1/processes/payroll"):
            assert "t0ken" not in (await c.get(where, headers=as_reader)).text
            assert "t0ken/claire" in (await c.get(where, headers=AUTH)).text


async def test_notification_delivery_state_is_read_with_the_read_scope_contacts_for_admins() -> (
    None
):
    from routing.domain.outbox import Outbox
    from routing.queries import OutboxQueries
    from shared.events import (
        NotificationDeadLetteredV1,
        NotificationDeliveredV1,
        NotificationReason,
        NotificationRequestedV1,
        NotificationRetriedV1,
    )

    def asked(nid: str) -> NotificationRequestedV1:
        return NotificationRequestedV1(
            notification_id=nid,
            handoff_id="po-1",
            reason=NotificationReason.BREACH,
            clock=None,
            cycle=None,
            team="warehouse",
            level=1,
            recipient="On-call",
            webhook="https://hooks.test/t0ken",
            secret="warehouse",
            urgent=True,
            not_before=NOW,
            decided_at=NOW,
            body={"notification_id": nid},
        )

    outbox = Outbox()
    outbox.assign(0)
    for nid in ("retrying", "delivered", "dead"):
        outbox.requested(0, asked(nid))
    later = NOW + timedelta(minutes=1)
    outbox.retried(
        0,
        NotificationRetriedV1(
            notification_id="retrying", attempts=2, next_attempt_at=later, error="HTTP 503: busy"
        ),
    )
    outbox.finished(
        0,
        NotificationDeliveredV1(
            notification_id="delivered", attempts=1, status=202, delivered_at=NOW
        ),
    )
    outbox.finished(
        0,
        NotificationDeadLetteredV1(
            notification_id="dead",
            attempts=3,
            code="retries-exhausted",
            error="HTTP 500",
            dead_at=later,
        ),
    )
    outbox.open(0)
    app = reader_app()
    app.state.outbox = OutboxQueries(outbox)
    reader = {"Authorization": f"Bearer {READER_KEY}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        assert (await c.get("/v1/notifications")).status_code == 401
        seen = (await c.get("/v1/notifications", headers=reader)).json()
        admin = (await c.get("/v1/notifications", headers=AUTH, params={"handoff": "po-1"})).json()
        other = (await c.get("/v1/notifications", headers=AUTH, params={"handoff": "x"})).json()
        bad = await c.get("/v1/notifications", headers=AUTH, params={"limit": 0})
    assert seen["partitions"] == {"0": True}
    (pending,) = seen["pending"]
    assert (pending["state"], pending["attempts"], pending["last_error"]) == (
        "retrying",
        2,
        "HTTP 503: busy",
    )
    assert (pending["webhook"], pending["body"]) == (None, None)  # a URL may carry a token
    assert [
        (f["notification_id"], f["state"], f["status"], f["code"]) for f in seen["finished"]
    ] == [
        ("dead", "dead-lettered", None, "retries-exhausted"),
        ("delivered", "delivered", 202, ""),
    ]
    assert admin["pending"][0]["webhook"] == "https://hooks.test/t0ken"
    assert admin["pending"][0]["body"] == {"notification_id": "retrying"}
    assert len(admin["finished"]) == 2
    assert (other["pending"], other["finished"]) == ([], [])
    assert bad.status_code == 422 and "limit" in bad.text
