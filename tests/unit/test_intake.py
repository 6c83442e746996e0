"""intake's door without Kafka: ids, idempotency, event times, scope, the map, limits, errors.

The HTTP-shape tests replace the Kafka sink by a list (integration tests use the real broker);
the process map is the shipped example, put in force by hand as the map table would.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from intake.domain.events import (
    InvalidEvents,
    Limits,
    MissingIdempotency,
    OutOfScope,
    admit,
)
from intake.domain.idempotency import IdempotencyCache, KeyReused, Reply
from intake.domain.posted import ONE_EVENT, PostedEvent
from intake.domain.rejections import Rejection
from intake.main import create_app
from intake.settings import Settings
from routing.adapters.mapfile import read_map_file
from routing.domain.versioning import next_map
from routing.settings import DEFAULT_MAP
from shared.auth import ApiKey, Caller, RateLimit, Scope
from shared.clock import FakeClock
from shared.events import EncodedEvent, Envelope, HandoffSubmittedV1
from shared.kafka import KafkaUnavailable
from shared.routes import Router

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANYONE = Caller("erp", frozenset({"*"}), frozenset(Scope))
KEY = "test-key-0123456789abcdef"
SALES_KEY = "sales-key-0123456789abcdef"
PMAP = next_map(read_map_file(DEFAULT_MAP), None, now=NOW, source="test").map
ROUTER = Router(PMAP)
LIMITS = Limits(max_skew=timedelta(minutes=5), max_event_bytes=1_000_000)


def event(body: dict[str, Any]) -> PostedEvent:
    return ONE_EVENT.validate_python(body)


def submitted(**data: object) -> PostedEvent:
    return event(
        {
            "type": "submitted",
            "data": {"case_id": "c1", "kind": "incident", "from": "service-desk", **data},
        }
    )


def build(
    items: Sequence[PostedEvent],
    idem: str | None = "k1",
    caller: Caller = ANYONE,
    known: dict[str, tuple[str, str]] | None = None,
) -> list[EncodedEvent]:
    return admit(
        items,
        caller=caller,
        router=ROUTER,
        pair_of=(known or {}).get,
        idempotency_key=idem,
        now=NOW,
        limits=LIMITS,
        paths=[f"events[{i}]" for i in range(len(items))],
    ).records


def decoded(record: EncodedEvent) -> Envelope:
    return Envelope.from_bytes(record.value)


def test_retried_request_with_the_same_idempotency_key_yields_the_same_ids() -> None:
    first, second = build([submitted()]), build([submitted()])
    assert first[0].event_id == second[0].event_id
    assert first[0].key == second[0].key  # the generated handoff id too
    assert build([submitted()], idem="k2")[0].event_id != first[0].event_id


def test_event_without_id_and_request_without_key_is_refused() -> None:
    with pytest.raises(MissingIdempotency) as err:
        build([submitted()], idem=None)
    assert err.value.field == "events[0].event_id"


def test_client_event_id_is_kept_and_event_time_defaults_to_receipt() -> None:
    item = event({"handoff_id": "h1", "type": "accepted", "event_id": "my-id-1"})
    (record,) = build([item], idem=None)
    envelope = decoded(record)
    assert envelope.event_id == "my-id-1" and envelope.occurred_at == NOW
    assert envelope.event_type == "handoff.accepted" and envelope.key == "h1"
    assert envelope.source == "erp" and envelope.digest is not None


def test_the_encoded_event_is_the_contract_and_names_its_upstream_system() -> None:
    (record,) = build([submitted(priority="P2", attributes={"category": "network"})])
    envelope = decoded(record)
    payload = envelope.payload
    assert isinstance(payload, HandoffSubmittedV1) and payload.priority == "P2"
    assert envelope.correlation_id == "c1" and envelope.source == "erp"
    assert dict(record.headers)["ce_type"] == b"handoff.submitted"


def test_a_retry_has_the_same_digest_and_other_content_under_the_id_another() -> None:
    a = build([event({"handoff_id": "h", "type": "rated", "event_id": "e", "data": {"rating": 4}})])
    b = build([event({"handoff_id": "h", "type": "rated", "event_id": "e", "data": {"rating": 4}})])
    c = build([event({"handoff_id": "h", "type": "rated", "event_id": "e", "data": {"rating": 1}})])
    assert decoded(a[0]).digest == decoded(b[0]).digest != decoded(c[0]).digest


def test_event_time_in_the_future_is_refused() -> None:
    item = event(
        {"handoff_id": "h1", "type": "accepted", "occurred_at": (NOW + timedelta(hours=1))}
    )
    with pytest.raises(InvalidEvents) as err:
        build([item])
    assert err.value.errors[0][0] == "events[0].occurred_at"


def test_the_same_event_id_twice_in_one_request_is_refused() -> None:
    items = [
        event({"handoff_id": "h1", "type": "accepted", "event_id": "dup"}),
        event({"handoff_id": "h2", "type": "accepted", "event_id": "dup"}),
    ]
    with pytest.raises(InvalidEvents) as err:
        build(items)
    ((field, reason),) = err.value.errors
    assert field == "events[1].event_id" and "events[0]" in reason


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"from": "sevice-desk"}, "events[0].data.from", "did you mean 'service-desk'"),
        ({"to": "it-l3"}, "events[0].data.to", "known: "),
        ({"kind": "incidnet"}, "events[0].data.kind", "did you mean 'incident'"),
        ({"kind": "payroll-input"}, "events[0].data.kind", "kinds from 'service-desk'"),
        ({"to": "payroll"}, "events[0].data.to", "this kind goes to"),
    ],
)
def test_what_routing_could_never_route_is_refused_with_the_alternatives(
    changes: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(InvalidEvents) as err:
        build([submitted(**changes)])
    ((where, reason),) = err.value.errors
    assert where == field and words in reason


def test_a_key_scoped_to_a_process_writes_only_for_handoffs_of_that_process() -> None:
    desk = Caller("desk", frozenset({"service-desk"}), frozenset({Scope.WRITE, Scope.READ}))
    build([submitted()], caller=desk)  # service-desk -> it-l2-apps: the supplier is in scope
    with pytest.raises(OutOfScope):
        build([submitted(**{"from": "sales", "kind": "pick-request"})], caller=desk)
    known = {"po-1": ("sales", "credit-control"), "inc-1": ("service-desk", "it-l2-apps")}
    cancel = event({"handoff_id": "po-1", "type": "cancelled", "event_id": "x"})
    with pytest.raises(OutOfScope) as err:
        build([cancel], caller=desk, known=known)
    assert err.value.errors[0][0] == "events[0].handoff_id"
    build([event({"handoff_id": "inc-1", "type": "accepted"})], caller=desk, known=known)


def test_a_scoped_key_may_follow_its_own_opening_in_the_same_request() -> None:
    desk = Caller("desk", frozenset({"service-desk"}), frozenset({Scope.WRITE}))
    opening = event(
        {
            "handoff_id": "new-1",
            "type": "submitted",
            "data": {"case_id": "c", "kind": "incident", "from": "service-desk"},
        }
    )
    accept = event({"handoff_id": "new-1", "type": "accepted"})
    assert len(build([opening, accept], caller=desk)) == 2
    with pytest.raises(OutOfScope) as err:  # unknown handoff: its scope cannot be checked
        build([event({"handoff_id": "nobody-knows", "type": "accepted"})], caller=desk)
    assert "not known to intake" in err.value.errors[0][1]


def test_idempotency_key_reused_with_another_body_is_refused() -> None:
    cache = IdempotencyCache(10_000)
    cache.begin("erp", "k", "hash-a")
    cache.finish("erp", "k", Reply(202, b'{"accepted":1}'))
    assert cache.lookup("erp", "k", "hash-a") == Reply(202, b'{"accepted":1}')
    with pytest.raises(KeyReused):
        cache.lookup("erp", "k", "hash-b")
    assert cache.lookup("other-caller", "k", "hash-b") is None


def test_idempotency_replies_are_bounded_by_bytes_oldest_forgotten_first() -> None:
    cache = IdempotencyCache(5_000)
    for i in range(100):
        cache.begin("erp", f"k{i}", "h")
        cache.finish("erp", f"k{i}", Reply(202, b"x" * 500))
    assert cache.size_bytes <= 5_000 and 0 < len(cache) < 100
    assert cache.lookup("erp", "k99", "h") is not None
    assert cache.lookup("erp", "k0", "h") is None


# --------------------------------------------------------------------------- over HTTP


class MemorySink:
    """Stands in for Kafka in these HTTP-shape tests only (integration tests use the broker)."""

    def __init__(self) -> None:
        self.written: list[Envelope] = []
        self.replayed: list[Rejection] = []
        self.down = False

    async def write(self, records: Sequence[EncodedEvent]) -> None:
        if self.down:
            raise KafkaUnavailable("broker down")
        self.written.extend(Envelope.from_bytes(r.value) for r in records)

    async def replay(self, rejection: Rejection, by: str, at: datetime) -> None:
        self.replayed.append(rejection)


KEYS = [
    ApiKey(name="erp", key=KEY, processes=["*"]),
    ApiKey(name="desk", key=SALES_KEY, processes=["service-desk"]),
]


def make_app(**settings: Any) -> tuple[FastAPI, MemorySink]:
    app = create_app(Settings(api_keys=KEYS, **settings), clock=FakeClock(NOW))
    sink = MemorySink()
    app.state.intake._sink = sink
    app.state.maps.router = ROUTER
    return app, sink


@pytest.fixture
def app_and_sink() -> tuple[FastAPI, MemorySink]:
    return make_app()


async def post(
    app: FastAPI,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    key: str = KEY,
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        raw = content if content is not None else json.dumps(body).encode()
        return await client.post(path, content=raw, headers={**auth, **(headers or {})})


SUBMIT = {"case_id": "INC-1", "kind": "incident", "from": "service-desk", "priority": "P2"}


async def test_submit_returns_202_with_the_ids_and_a_retry_gets_the_same_reply(app_and_sink):
    app, sink = app_and_sink
    first = await post(app, "/v1/handoffs", SUBMIT, {"Idempotency-Key": "abc"})
    again = await post(app, "/v1/handoffs", SUBMIT, {"Idempotency-Key": "abc"})
    assert first.status_code == 202 and again.json() == first.json()
    assert len(sink.written) == 1
    payload = sink.written[0].payload
    assert isinstance(payload, HandoffSubmittedV1) and payload.priority == "P2"
    reused = await post(
        app, "/v1/handoffs", {**SUBMIT, "priority": "P1"}, {"Idempotency-Key": "abc"}
    )
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_an_empty_idempotency_key_is_refused_naming_the_header(app_and_sink):
    app, sink = app_and_sink
    r = await post(app, "/v1/handoffs", SUBMIT, {"Idempotency-Key": ""})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "Idempotency-Key"
    assert sink.written == []


async def test_malformed_json_is_a_400_naming_the_problem(app_and_sink):
    app, _ = app_and_sink
    r = await post(app, "/v1/events", content=b'{"events": [')
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "JSON" in r.json()["detail"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_anywhere_in_the_body_are_refused(app_and_sink, constant):
    app, sink = app_and_sink
    body = (
        '{"events": [{"type": "submitted", "handoff_id": "h", "event_id": "e", "data": '
        '{"case_id": "c", "kind": "incident", "from": "service-desk", "attributes": {"x": '
        + constant
        + "}}}]}"
    )
    r = await post(app, "/v1/events", content=body.encode())
    assert r.status_code == 400 and constant in r.json()["detail"]
    assert sink.written == []


async def test_invalid_fields_are_a_422_listing_each_field(app_and_sink):
    app, sink = app_and_sink
    r = await post(app, "/v1/handoffs", {"case_id": "c", "kind": "x", "from": "Bad"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["from"]
    events = [
        {"type": "submitted", "data": {"case_id": "c", "kind": "Not A Slug", "priority": "P9"}},
        {"type": "accepted"},
        {"handoff_id": "h1", "type": "rated", "data": {"rating": 9}},
        {"handoff_id": "h1", "type": "exploded"},
    ]
    r = await post(app, "/v1/events", {"events": events}, {"Idempotency-Key": "b"})
    fields = {e["field"] for e in r.json()["errors"]}
    assert r.status_code == 422 and fields == {
        "events[0].data.kind",
        "events[0].data.priority",
        "events[0].data.from",
        "events[2].data.rating",
        "events[3].type",
    }
    r = await post(app, "/v1/events", {"events": events[1:2]}, {"Idempotency-Key": "c"})
    assert [e["field"] for e in r.json()["errors"]] == ["events[0].handoff_id"]
    assert sink.written == []


@pytest.mark.parametrize(
    "when",
    ["1985-06-01T09:00:00Z", "0001-01-01T00:00:00+14:00", "2150-01-01T00:00:00Z"],
)
async def test_event_times_outside_the_calendars_range_are_refused(app_and_sink, when):
    app, sink = app_and_sink
    r = await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "e", "occurred_at": when})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "occurred_at"
    r = await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "e", "due_at": when})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "due_at"
    assert sink.written == []


async def test_unroutable_handoffs_are_refused_at_the_door(app_and_sink):
    app, sink = app_and_sink
    r = await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "e", "kind": "pizza"})
    assert r.status_code == 422
    (error,) = r.json()["errors"]
    assert error["field"] == "kind" and "kinds from 'service-desk'" in error["reason"]
    assert sink.written == []


async def test_without_a_published_map_the_door_answers_503(app_and_sink):
    app, _ = app_and_sink
    app.state.maps.router = None
    r = await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "e"})
    assert r.status_code == 503 and "Retry-After" in r.headers


async def test_missing_or_wrong_api_key_is_a_401(app_and_sink):
    app, _ = app_and_sink
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        r = await client.post("/v1/events", json={"events": []})
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = await client.post("/v1/events", json={}, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401


async def test_posting_for_a_process_outside_the_key_scope_is_a_403(app_and_sink):
    app, sink = app_and_sink
    body = {"event_id": "e1", "case_id": "c", "kind": "pick-request", "from": "sales"}
    r = await post(app, "/v1/handoffs", body, key=SALES_KEY)
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "from"
    # a later event on another process's handoff: the directory knows the handoff
    app.state.intake._directory._own["po-9"] = ("sales", "credit-control")
    r = await post(
        app, "/v1/handoffs/po-9/events", {"type": "cancelled", "event_id": "x"}, key=SALES_KEY
    )
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "handoff_id"
    assert sink.written == []


async def test_a_read_only_key_cannot_post(app_and_sink):
    app, _ = app_and_sink
    app.state.keyring = type(app.state.keyring)(
        [ApiKey(name="grafana", key="read-only-key-0123456", scopes=[Scope.READ])],
        FakeClock(NOW),
        None,
    )
    r = await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "e"}, key="read-only-key-0123456")
    assert r.status_code == 403 and "events:write" in r.json()["detail"]


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
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "events"


async def test_a_body_over_the_size_limit_is_refused_before_it_is_parsed():
    app, _ = make_app(max_body_bytes=2048)
    r = await post(app, "/v1/events", content=b"{" + b" " * 4000)  # not even JSON
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "body"


async def test_an_event_over_the_kafka_record_limit_is_a_413_not_a_retry():
    app, sink = make_app(max_event_bytes=2048)
    small = {"handoff_id": "h", "type": "completed", "event_id": "ok", "data": {"note": "x"}}
    big = {"handoff_id": "h", "type": "completed", "event_id": "big", "data": {"note": "x" * 1900}}
    r = await post(app, "/v1/events", {"events": [small, big]})
    assert r.status_code == 413 and r.json()["errors"][0]["field"] == "events[1]"
    assert "Retry-After" not in r.headers and sink.written == []


async def test_ids_with_slash_and_hash_work_in_the_url(app_and_sink):
    app, sink = app_and_sink
    r = await post(app, "/v1/handoffs", {**SUBMIT, "handoff_id": "ERP/PO#4711", "event_id": "s"})
    assert r.status_code == 202
    r = await post(
        app, "/v1/handoffs/ERP%2FPO%234711/events", {"type": "accepted", "event_id": "a"}
    )
    assert r.status_code == 202, r.text
    assert [e.key for e in sink.written] == ["ERP/PO#4711", "ERP/PO#4711"]


@pytest.mark.parametrize("bad", ["-leading-dash", "x" * 201, "has%20space"])
async def test_a_path_handoff_id_outside_the_id_pattern_is_a_422_naming_it(app_and_sink, bad):
    app, sink = app_and_sink
    r = await post(app, f"/v1/handoffs/{bad}/events", {"type": "accepted", "event_id": "a"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["handoff_id"]
    assert sink.written == []


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after():
    app, _ = make_app(rate_limit=RateLimit(per_second=1, burst=2))
    answers = [
        (await post(app, "/v1/handoffs/h/events", {"type": "accepted", "event_id": f"a{i}"}))
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert int(answers[2].headers["retry-after"]) >= 1


async def test_intake_metrics_count_accepted_events_and_refusals(app_and_sink):
    app, _ = app_and_sink
    await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "ok"})
    await post(app, "/v1/handoffs", {**SUBMIT, "event_id": "bad", "kind": "pizza"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        text = (await client.get("/metrics")).text
    assert 'handoff_intake_events_total{event_type="handoff.submitted",source="erp"} 1.0' in text
    assert 'handoff_intake_refused_requests_total{reason="invalid"} 1.0' in text
    assert 'handoff_http_requests_total{method="POST",route="/v1/handoffs",status="202"}' in text


# --------------------------------------------------------------------------- CloudEvents

CE_SUBMITTED = {
    "specversion": "1.0",
    "id": "ce-1",
    "source": "/erp/orders",
    "type": "baton.handoff.submitted",
    "subject": "ce-h1",
    "time": "2026-03-02T09:59:00+01:00",
    "datacontenttype": "application/json",
    "data": {"case_id": "C-1", "kind": "incident", "from": "service-desk", "priority": "P2"},
}


async def test_a_structured_cloudevent_is_a_posted_event(app_and_sink):
    app, sink = app_and_sink
    r = await post(
        app, "/v1/events", CE_SUBMITTED, {"Content-Type": "application/cloudevents+json"}
    )
    assert r.status_code == 202, r.text
    (envelope,) = sink.written
    assert (envelope.event_id, envelope.key, envelope.event_type) == (
        "ce-1",
        "ce-h1",
        "handoff.submitted",
    )
    assert envelope.occurred_at == datetime(2026, 3, 2, 8, 59, tzinfo=UTC)
    payload = envelope.payload
    assert isinstance(payload, HandoffSubmittedV1) and payload.priority == "P2"


async def test_a_cloudevents_batch_is_all_or_nothing_naming_each_attribute(app_and_sink):
    app, sink = app_and_sink
    accepted = {**CE_SUBMITTED, "id": "ce-2", "type": "baton.handoff.accepted", "data": None}
    bad = [
        {**CE_SUBMITTED, "id": "ce-3", "type": "com.example.order"},
        {k: v for k, v in CE_SUBMITTED.items() if k != "id"},
        {**CE_SUBMITTED, "id": "ce-5", "data": {**CE_SUBMITTED["data"], "kind": "pizza"}},
        {**CE_SUBMITTED, "id": "ce-6", "type": "baton.handoff.accepted", "subject": None},
    ]
    batch_type = {"Content-Type": "application/cloudevents-batch+json"}
    r = await post(app, "/v1/events", [accepted, *bad], batch_type)
    assert r.status_code == 422
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["[1].type", "[2].id", "[4].subject"], fields
    r = await post(app, "/v1/events", [accepted, bad[2]], batch_type)  # well formed, unroutable
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["[1].data.kind"]
    assert sink.written == []
    r = await post(app, "/v1/events", [CE_SUBMITTED, accepted], batch_type)
    assert r.status_code == 202 and [e.event_id for e in sink.written] == ["ce-1", "ce-2"]


async def test_a_binary_mode_cloudevent_takes_its_attributes_from_ce_headers(app_and_sink):
    app, sink = app_and_sink
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "ce-b1",
        "ce-source": "/ticketing",
        "ce-type": "baton.handoff.paused",
        "ce-subject": "h-9",
        "ce-time": "2026-03-02T08:30:00Z",
    }
    r = await post(app, "/v1/events", {"reason": "waiting for the caller"}, headers)
    assert r.status_code == 202, r.text
    (envelope,) = sink.written
    assert envelope.event_type == "handoff.paused" and envelope.key == "h-9"
    assert envelope.data == {"reason": "waiting for the caller"}
    missing = {k: v for k, v in headers.items() if k != "ce-id"}
    r = await post(app, "/v1/events", {"reason": "x"}, missing)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ce-id"
    r = await post(app, "/v1/events", content=b'{"reason": NaN}', headers=headers)
    assert r.status_code == 400
