"""intake against the real broker: a 202 means the events are on the raw topic; a stopped
broker means a fast 503 and readiness false; dead letters are listed, counted and replayed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

import builders as b
from intake.main import create_app
from intake.settings import Settings
from routing.adapters.mapfile import read_map_file
from routing.domain.versioning import next_map
from routing.settings import DEFAULT_MAP
from shared.auth import ApiKey
from shared.events import Envelope
from shared.kafka import Publisher, ensure_topics
from shared.logs import RepeatedLogs
from shared.routes import Router
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import Broker, free_port, fresh_settings, read_all, wait_for

KEY = "integration-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}


async def publish_map(kafka: KafkaSettings) -> None:
    """The example map on the map topic, as routing would have published it."""
    pmap = next_map(read_map_file(DEFAULT_MAP), None, now=b.T0, source="test").map
    publisher = Publisher(kafka, client_id="test-map")
    await publisher.start(wait=True)
    try:
        topic = kafka.topics.name(Stream.PROCESS_MAP)
        await publisher.write([(topic, b.map_bytes(pmap), b"current", [], None)])
    finally:
        await publisher.stop()


def app_for(kafka: KafkaSettings, **settings: object) -> FastAPI:
    keys = [ApiKey(name="erp", key=KEY, processes=["*"], admin=True)]
    return create_app(Settings(kafka=kafka, api_keys=keys, **settings))  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def started(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers=HEADERS
        ) as client:
            yield client


@pytest.fixture
async def with_map(kafka: KafkaSettings) -> KafkaSettings:
    await publish_map(kafka)
    return kafka


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/health/ready")).status_code == 200


async def not_ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/health/ready")).status_code == 503


async def test_accepted_events_are_on_the_raw_topic_keyed_by_handoff(with_map) -> None:
    kafka = with_map
    app = app_for(kafka)
    async with started(app) as client:
        await wait_for(lambda: ready(client), what="intake ready")
        body = {
            "events": [
                {
                    "handoff_id": "h1",
                    "type": "submitted",
                    "data": {"case_id": "o-1", "kind": "pick-request", "from": "sales"},
                },
                {"handoff_id": "h1", "type": "accepted"},
                {"handoff_id": "h2", "type": "paused", "data": {"reason": "waiting"}},
            ]
        }
        r = await client.post("/v1/events", json=body, headers={"Idempotency-Key": "req-1"})
        assert r.status_code == 202, r.text
        retry = await client.post("/v1/events", json=body, headers={"Idempotency-Key": "req-1"})
        assert retry.json() == r.json()
    records = await read_all(kafka, kafka.topics.name(Stream.RAW))
    # Order holds per handoff (one partition each), not across partitions.
    by_key = sorted(records, key=lambda rec: rec.key)
    assert [(rec.key, dict(rec.headers)["ce_type"]) for rec in by_key] == [
        (b"h1", b"handoff.submitted"),
        (b"h1", b"handoff.accepted"),
        (b"h2", b"handoff.paused"),
    ]
    ids = {dict(rec.headers)["ce_id"].decode() for rec in records}
    assert ids == {e["event_id"] for e in r.json()["events"]}
    assert {Envelope.from_bytes(rec.value).source for rec in records} == {"erp"}


async def test_unreachable_kafka_answers_503_with_retry_after(kafka: KafkaSettings) -> None:
    nowhere = kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    app = app_for(nowhere)
    async with started(app) as client:
        pmap = next_map(read_map_file(DEFAULT_MAP), None, now=b.T0, source="test").map
        app.state.maps.router = Router(pmap)  # the map cannot be read either: give it one
        r = await client.post("/v1/handoffs/h1/events", json={"type": "accepted", "event_id": "e1"})
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
        answer = await client.get("/health/ready")
        assert answer.status_code == 503 and answer.json()["checks"]["kafka"] is False


async def test_a_dead_letter_is_listed_counted_and_replayed_once_fixed(with_map) -> None:
    kafka = with_map
    raw_topic, dlq = kafka.topics.name(Stream.RAW), kafka.topics.dlq(Stream.RAW)
    original = b.event("accepted", "po-77", b.T0, seq="a").model_copy(update={"source": "erp"})
    headers = [
        ("ce_id", original.event_id.encode()),
        ("dlq.code", b"unknown-handoff"),
        ("dlq.reason", b"no submitted or expected event arrived for handoff 'po-77'"),
        ("dlq.topic", raw_topic.encode()),
        ("dlq.consumer_group", kafka.group("sla").encode()),
        ("dlq.failed_at", b"2026-03-02T10:00:00+00:00"),
    ]
    publisher = Publisher(kafka, client_id="test-dlq")
    await publisher.start(wait=True)
    await publisher.write([(dlq, original.to_bytes(), b"po-77", headers, None)])
    await publisher.stop()

    app = app_for(kafka)
    async with started(app) as client:
        await wait_for(lambda: app.state.dead_letters.ready, what="dead letters read")
        listed = (await client.get("/v1/rejections", params={"source": "erp"})).json()
        assert listed["count"] == 1
        (item,) = listed["items"]
        assert item["handoff_id"] == "po-77" and item["service"] == "sla"
        assert item["reason_code"] == "unknown-handoff" and "po-77" in item["reason"]
        assert item["replayable"] and item["replayed_at"] is None
        text = (await client.get("/metrics")).text
        assert (
            'handoff_dead_letters_total{reason="unknown-handoff",service="sla",source="erp"} 1.0'
            in text
        )
        detail = (await client.get(f"/v1/rejections/{item['id']}")).json()
        assert detail["event"]["event_id"] == original.event_id
        replayed = await client.post(f"/v1/rejections/{item['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        again = await client.post(f"/v1/rejections/{item['id']}/replay")
        assert again.status_code == 409
    raw = await read_all(kafka, raw_topic)
    assert [Envelope.from_bytes(r.value).event_id for r in raw] == [original.event_id]
    # The replay survives a restart: the marker is read back from the dead-letter topic.
    app = app_for(kafka)
    async with started(app) as client:
        await wait_for(lambda: app.state.dead_letters.ready, what="dead letters read")
        (item,) = (await client.get("/v1/rejections")).json()["items"]
        assert item["replayed_at"] is not None and item["replayed_by"] == "erp"


class Captured(logging.Handler):
    """What the service's log handler writes: filtered as configure_observability filters it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.addFilter(RepeatedLogs())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
async def own_broker() -> AsyncIterator[Broker]:
    """A broker of this test's own, so stopping it disturbs no other test."""
    broker = Broker(19392, "outage")
    broker.clean()
    broker.start()
    try:
        yield broker
    finally:
        broker.clean()


async def test_a_stopped_broker_means_a_fast_503_and_nothing_lost_when_it_is_back(
    own_broker: Broker,
) -> None:
    kafka = fresh_settings(own_broker.bootstrap)
    await ensure_topics(kafka)
    await publish_map(kafka)
    app = app_for(kafka, kafka_timeout_s=3.0)
    captured = Captured()
    logging.getLogger().addHandler(captured)
    accepted: list[str] = []

    def body(i: int) -> dict[str, object]:
        return {
            "handoff_id": f"h{i}",
            "event_id": f"e{i}",
            "case_id": f"c{i}",
            "kind": "incident",
            "from": "service-desk",
        }

    try:
        async with started(app) as client:
            await wait_for(lambda: ready(client), what="intake ready", within=60)
            for i in range(5):
                r = await client.post("/v1/handoffs", json=body(i))
                assert r.status_code == 202
                accepted.append(f"e{i}")
            await asyncio.to_thread(own_broker.stop)
            loop = asyncio.get_running_loop()
            refused: list[str] = []
            for i in range(5, 10):
                began = loop.time()
                r = await client.post("/v1/handoffs", json=body(i))
                took = loop.time() - began
                assert r.status_code == 503 and "retry-after" in r.headers, r.text
                assert took < 6.0, f"the 503 took {took:.1f} s"
                refused.append(f"e{i}")
            await wait_for(lambda: not_ready(client), what="readiness false", within=10)
            lines_during_outage = len(captured.lines)
            await asyncio.sleep(8)  # the outage goes on: retries must not flood the log
            flood = len(captured.lines) - lines_during_outage
            await asyncio.to_thread(own_broker.start)
            await wait_for(lambda: ready(client), what="ready again", within=60)
            for i in range(5, 10):  # the client retries what was refused, same ids
                r = await client.post("/v1/handoffs", json=body(i))
                assert r.status_code == 202, r.text
                accepted.append(f"e{i}")
    finally:
        logging.getLogger().removeHandler(captured)
    assert flood < 20, f"{flood} log lines in 8 s of outage"
    assert any("unreachable" in line for line in captured.lines)
    assert any("reachable again" in line for line in captured.lines)
    raw = await read_all(kafka, kafka.topics.name(Stream.RAW))
    counts = Counter(Envelope.from_bytes(r.value).event_id for r in raw)
    assert set(counts) == set(accepted)  # nothing accepted is lost, nothing unknown written
    # A write that timed out may land once the broker is back; its retry has the same id and
    # the same digest, which every consumer de-duplicates.
    pairs = {(e.event_id, e.digest) for e in (Envelope.from_bytes(r.value) for r in raw)}
    assert len(pairs) == len(accepted)
