"""intake's domain and HTTP behaviour without Kafka: ids, idempotency, scope, errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from intake.domain.events import Caller, EventIn, InvalidEvents, OutOfScope, build_envelopes
from intake.domain.idempotency import IdempotencyCache, KeyReused, Reply
from intake.main import create_app
from intake.settings import ApiKey, Settings
from shared.clock import FakeClock
from shared.events import Envelope, HandoffSubmittedV1
from shared.kafka import KafkaUnavailable

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANYONE = Caller("erp", frozenset({"*"}))
KEY = "test-key-0123456789abcdef"


def build(items: Sequence[EventIn], idem: str | None = "k1", caller: Caller = ANYONE):
    return build_envelopes(
        items,
        caller=caller,
        idempotency_key=idem,
        now=NOW,
        max_skew=timedelta(minutes=5),
        paths=[f"events[{i}]" for i in range(len(items))],
    )


def submitted(**data: object) -> EventIn:
    return EventIn(
        type="submitted",
        data={"case_id": "c1", "kind": "incident", "from": "service-desk", **data},
    )


def test_retried_request_with_the_same_idempotency_key_yields_the_same_ids() -> None:
    first, second = build([submitted()]), build([submitted()])
    assert first[0].event_id == second[0].event_id
    assert first[0].key == second[0].key  # the generated handoff id too
    assert build([submitted()], idem="k2")[0].event_id != first[0].event_id


def test_event_without_id_and_request_without_key_is_refused() -> None:
    from intake.domain.events import MissingIdempotency

    with pytest.raises(MissingIdempotency) as err:
        build([submitted()], idem=None)
    assert err.value.field == "events[0].event_id"


def test_client_event_id_is_kept_and_event_time_defaults_to_receipt() -> None:
    item = EventIn(handoff_id="h1", type="accepted", event_id="my-id-1")
    (envelope,) = build([item], idem=None)
    assert envelope.event_id == "my-id-1" and envelope.occurred_at == NOW
    assert envelope.event_type == "handoff.accepted" and envelope.key == "h1"


def test_every_invalid_field_is_named_and_nothing_is_accepted() -> None:
    items = [
        submitted(),
        submitted(kind="Not A Slug", priority="P9"),
        EventIn(type="accepted"),
        EventIn(handoff_id="h1", type="rated", data={"rating": 9}),
    ]
    with pytest.raises(InvalidEvents) as err:
        build(items)
    fields = {f for f, _ in err.value.errors}
    assert fields == {
        "events[1].data.kind",
        "events[1].data.priority",
        "events[2].handoff_id",
        "events[3].data.rating",
    }


def test_event_time_in_the_future_is_refused() -> None:
    item = EventIn(handoff_id="h1", type="accepted", occurred_at=NOW + timedelta(hours=1))
    with pytest.raises(InvalidEvents) as err:
        build([item])
    assert err.value.errors[0][0] == "events[0].occurred_at"


def test_key_may_only_post_for_its_processes() -> None:
    sales_only = Caller("crm", frozenset({"sales"}))
    build([submitted(**{"from": "sales"})], caller=sales_only)
    with pytest.raises(OutOfScope):
        build([submitted()], caller=sales_only)


def test_idempotency_key_reused_with_another_body_is_refused() -> None:
    cache = IdempotencyCache(10)
    cache.begin("erp", "k", "hash-a")
    cache.finish("erp", "k", Reply(202, {"accepted": 1}))
    assert cache.lookup("erp", "k", "hash-a") == Reply(202, {"accepted": 1})
    with pytest.raises(KeyReused):
        cache.lookup("erp", "k", "hash-b")
    assert cache.lookup("other-caller", "k", "hash-b") is None


class MemorySink:
    """Stands in for Kafka in these HTTP-shape tests only (integration tests use the broker)."""

    def __init__(self) -> None:
        self.written: list[Envelope] = []
        self.down = False
        self.ready = True

    async def write(self, envelopes: Sequence[Envelope]) -> None:
        if self.down:
            raise KafkaUnavailable("broker down")
        self.written.extend(envelopes)


@pytest.fixture
def app_and_sink():
    app = create_app(
        Settings(api_keys=[ApiKey(name="erp", key=KEY, processes=["service-desk"])]),
        clock=FakeClock(NOW),
    )
    sink = MemorySink()
    app.state.intake._sink = sink
    return app, sink


async def post(app, path: str, body: object, headers: dict[str, str] | None = None):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        return await client.post(
            path, json=body, headers={"Authorization": f"Bearer {KEY}", **(headers or {})}
        )


async def test_submit_returns_202_with_the_ids_and_a_retry_gets_the_same_reply(app_and_sink):
    app, sink = app_and_sink
    body = {"case_id": "INC-1", "kind": "incident", "from": "service-desk", "priority": "P2"}
    first = await post(app, "/v1/handoffs", body, {"Idempotency-Key": "abc"})
    again = await post(app, "/v1/handoffs", body, {"Idempotency-Key": "abc"})
    assert first.status_code == 202 and again.json() == first.json()
    assert len(sink.written) == 1
    payload = sink.written[0].payload
    assert isinstance(payload, HandoffSubmittedV1) and payload.priority == "P2"
    reused = await post(app, "/v1/handoffs", {**body, "priority": "P1"}, {"Idempotency-Key": "abc"})
    assert reused.status_code == 422


async def test_malformed_json_is_a_400_naming_the_problem(app_and_sink):
    app, _ = app_and_sink
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        r = await client.post(
            "/v1/events",
            content=b'{"events": [',
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "JSON" in r.json()["title"]


async def test_invalid_fields_are_a_422_listing_each_field(app_and_sink):
    app, sink = app_and_sink
    r = await post(app, "/v1/handoffs", {"case_id": "c", "kind": "x", "from": "Bad"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["from"]
    assert sink.written == []


async def test_missing_or_wrong_api_key_is_a_401(app_and_sink):
    app, _ = app_and_sink
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        r = await client.post("/v1/events", json={"events": []})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = await client.post("/v1/events", json={}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


async def test_posting_for_a_process_outside_the_key_scope_is_a_403(app_and_sink):
    app, _ = app_and_sink
    body = {"event_id": "e1", "case_id": "c", "kind": "sales-order", "from": "sales"}
    r = await post(app, "/v1/handoffs", body)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "from"


async def test_kafka_down_is_a_503_with_retry_after_and_nothing_half_written(app_and_sink):
    app, sink = app_and_sink
    sink.down = True
    body = {"events": [{"handoff_id": "h1", "type": "accepted", "event_id": "e1"}]}
    r = await post(app, "/v1/events", body)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    sink.down = False
    r = await post(app, "/v1/events", body)
    assert r.status_code == 202 and [e.event_id for e in sink.written] == ["e1"]


async def test_batch_over_the_limit_is_a_413(app_and_sink):
    app, _ = app_and_sink
    events = [{"handoff_id": f"h{i}", "type": "accepted", "event_id": f"e{i}"} for i in range(1001)]
    r = await post(app, "/v1/events", {"events": events})
    assert r.status_code == 413


async def test_answers_are_counted_per_upstream_system_and_status(app_and_sink):
    app, _ = app_and_sink
    body = {"event_id": "e9", "case_id": "c", "kind": "incident", "from": "service-desk"}
    assert (await post(app, "/v1/handoffs", body)).status_code == 202
    assert (await post(app, "/v1/handoffs", {**body, "from": "Bad"})).status_code == 422
    no_key = await post(app, "/v1/handoffs", body, {"Authorization": "Bearer nope"})
    assert no_key.status_code == 401
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        text = (await client.get("/metrics")).text
    assert 'handoff_intake_requests_total{code="202",system="erp"} 1.0' in text
    assert 'handoff_intake_requests_total{code="422",system="erp"} 1.0' in text
    assert 'handoff_intake_requests_total{code="401",system="unauthenticated"} 1.0' in text
    assert 'code="200"' not in text  # /metrics itself is not counted
