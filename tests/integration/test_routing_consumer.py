"""The routing service against the real broker: raw events in, routed events out, poison
messages dead-lettered while the consumer keeps going, and the process map published with
versioned standards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI

from builders import ADMIN_KEYS, AUTH
from routing.main import create_app
from routing.settings import DEFAULT_MAP, Settings
from shared.contracts import Priority, ProcessMapV1
from shared.events import (
    Envelope,
    HandoffAcceptedV1,
    HandoffSubmittedV1,
    make_envelope,
)
from shared.kafka import Publisher, wait_acks
from shared.mapwire import MapAssembler
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import read_all, read_until, wait_for

READY_WITHIN = 60.0


@asynccontextmanager
async def running_routing(
    kafka: KafkaSettings, process_map: Path = DEFAULT_MAP
) -> AsyncIterator[FastAPI]:
    """The routing app with its lifespan running, once its map is in force and it has joined."""
    settings = Settings(kafka=kafka, process_map=process_map, api_keys=ADMIN_KEYS)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await wait_for(
            lambda: app.state.maps.loaded and app.state.consumer.joined.is_set(),
            within=READY_WITHIN,
            what="routing to put its map in force and join its group",
        )
        yield app


@asynccontextmanager
async def upstream(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    """A producer standing in for intake."""
    publisher = Publisher(kafka, client_id="test-upstream")
    await publisher.start(wait=True)
    try:
        yield publisher
    finally:
        await publisher.stop()


def submitted(
    handoff_id: str,
    origin: str = "service-desk",
    kind: str = "heartbeat",
    priority: Priority = Priority.P1,
    to: str | None = None,
) -> Envelope:
    now = datetime.now(UTC)
    payload = HandoffSubmittedV1(
        case_id=f"case-{handoff_id}",
        kind=kind,
        from_process=origin,
        to_process=to,
        priority=priority,
    )
    return make_envelope(
        payload, key=handoff_id, producer="intake", occurred_at=now, recorded_at=now
    )


def accepted(handoff_id: str) -> Envelope:
    now = datetime.now(UTC)
    return make_envelope(
        HandoffAcceptedV1(actor="l2-agent"),
        key=handoff_id,
        producer="intake",
        occurred_at=now,
        recorded_at=now,
    )


def has_ids(*event_ids: str) -> Callable[[list[Envelope]], bool]:
    return lambda envelopes: set(event_ids) <= {e.event_id for e in envelopes}


async def metrics_of(app: FastAPI) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://routing", headers=AUTH
    ) as client:
        return (await client.get("/metrics")).text


async def test_submitted_event_is_routed_with_route_and_standard(kafka: KafkaSettings) -> None:
    raw_topic, routed_topic = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    events = [submitted(f"h-{i}") for i in range(6)]
    async with running_routing(kafka), upstream(kafka) as publisher:
        for event in events:
            await publisher.publish(raw_topic, event)
        routed = await read_until(kafka, routed_topic, has_ids(*(e.event_id for e in events)))

    by_id = {e.event_id: e for e in routed}
    first = by_id[events[0].event_id]
    assert first.route is not None
    assert (first.route.from_process, first.route.kind, first.route.to_process) == (
        "service-desk",
        "heartbeat",
        "it-l2-network",
    )
    assert first.route.standard.route_id == "heartbeat"
    assert first.route.standard.version == 1
    assert first.route.standard.calendar.always_open
    assert (first.producer, first.key, first.data) == ("routing", "h-0", events[0].data)
    # Keyed by handoff id on topics with equal partition counts: each handoff stays on the
    # partition it came in on, which is what sla's co-partitioned state relies on.
    raw_partitions = {r.key: r.partition for r in await read_all(kafka, raw_topic)}
    routed_partitions = {r.key: r.partition for r in await read_all(kafka, routed_topic)}
    assert routed_partitions == raw_partitions
    assert len(set(raw_partitions.values())) == 2


async def test_later_lifecycle_events_pass_through_in_order(kafka: KafkaSettings) -> None:
    raw_topic, routed_topic = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    opening, response = submitted("h-order"), accepted("h-order")
    async with running_routing(kafka), upstream(kafka) as publisher:
        await publisher.publish(raw_topic, opening)
        await publisher.publish(raw_topic, response)
        routed = await read_until(kafka, routed_topic, has_ids(opening.event_id, response.event_id))

    assert [e.event_type for e in routed] == ["handoff.submitted", "handoff.accepted"]
    passed = routed[1]
    assert passed.route is None
    assert passed.producer == "routing"
    assert passed.model_dump(exclude={"producer"}) == response.model_dump(exclude={"producer"})


async def test_unroutable_event_is_dead_lettered_and_the_consumer_keeps_going(
    kafka: KafkaSettings,
) -> None:
    raw_topic, routed_topic = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    dlq_topic = kafka.topics.dlq(Stream.RAW)
    poison = submitted("h-same", origin="nobody")
    poison_bytes = poison.to_bytes()
    after = submitted("h-same")  # same key, same partition: queued behind the poison
    async with running_routing(kafka) as app, upstream(kafka) as publisher:
        ack = await publisher.send(raw_topic, poison_bytes, key=b"h-same", headers=[("x", b"1")])
        await wait_acks([ack])
        await publisher.publish(raw_topic, after)
        routed = await read_until(kafka, routed_topic, has_ids(after.event_id))
        dead = await wait_for(lambda: read_all(kafka, dlq_topic), what="the dead letter")
        metrics = await metrics_of(app)

    assert [e.event_id for e in routed] == [after.event_id]
    (letter,) = dead
    assert letter.value == poison_bytes
    assert letter.key == b"h-same"
    headers = dict(letter.headers)
    assert headers["x"] == b"1"
    assert headers["dlq.code"] == b"unknown-process"
    assert headers["dlq.reason"].startswith(b"unknown supplying process from='nobody' (known: ")
    assert headers["dlq.topic"] == raw_topic.encode()
    assert headers["dlq.consumer_group"] == f"{kafka.topic_prefix}routing".encode()
    assert 'handoff_routing_rejected_total{reason="unknown-process"} 1.0' in metrics
    assert (
        f'handoff_events_processed_total{{event_type="handoff.submitted",result="invalid",'
        f'topic="{raw_topic}"}} 1.0'
    ) in metrics
    assert (
        f'handoff_events_processed_total{{event_type="handoff.submitted",result="ok",'
        f'topic="{raw_topic}"}} 1.0'
    ) in metrics


async def test_malformed_record_is_dead_lettered(kafka: KafkaSettings) -> None:
    raw_topic, routed_topic = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    dlq_topic = kafka.topics.dlq(Stream.RAW)
    after = submitted("h-after-garbage")
    async with running_routing(kafka), upstream(kafka) as publisher:
        ack = await publisher.send(raw_topic, b"not json {", key=b"h-garbage", headers=[])
        await wait_acks([ack])
        await publisher.publish(raw_topic, after)
        await read_until(kafka, routed_topic, has_ids(after.event_id))
        (letter,) = await wait_for(lambda: read_all(kafka, dlq_topic), what="the dead letter")

    assert letter.value == b"not json {"
    headers = dict(letter.headers)
    assert headers["dlq.code"] == b"invalid"
    assert b"json" in headers["dlq.reason"].lower()


async def published_maps(kafka: KafkaSettings) -> list[ProcessMapV1]:
    """Every map put in force on the topic, in order (each assembled from its parts)."""
    assembler = MapAssembler()
    records = await read_all(kafka, kafka.topics.name(Stream.PROCESS_MAP))
    found = [assembler.feed(r.key, r.value) for r in records]
    return [m for m in found if m is not None]


async def test_map_is_published_and_a_restart_with_an_edited_standard_bumps_its_version(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    process_map = tmp_path / "process-map.yaml"
    process_map.write_text(DEFAULT_MAP.read_text())

    async with running_routing(kafka, process_map):
        pass
    (first,) = await published_maps(kafka)
    assert first.version == 1
    assert first.source == str(process_map)
    assert {r.standard.version for r in first.routes} == {1}

    async with running_routing(kafka, process_map):  # same file: nothing to publish
        pass
    assert [m.version for m in await published_maps(kafka)] == [1]

    process_map.write_text(
        DEFAULT_MAP.read_text().replace(
            "P1: {response: 2s, resolution: 4s}", "P1: {response: 3s, resolution: 6s}"
        )
    )
    heartbeat = submitted("h-after-edit")
    async with running_routing(kafka, process_map) as app, upstream(kafka) as publisher:
        await publisher.publish(kafka.topics.name(Stream.RAW), heartbeat)
        routed = await read_until(
            kafka, kafka.topics.name(Stream.ROUTED), has_ids(heartbeat.event_id)
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://r", headers=AUTH
        ) as client:
            served = (await client.get("/v1/map")).json()

    maps = await published_maps(kafka)
    assert [m.version for m in maps] == [1, 2]
    versions = {r.id: r.standard.version for r in maps[-1].routes}
    assert versions.pop("heartbeat") == 2
    assert set(versions.values()) == {1}
    assert served["version"] == 2
    (event,) = routed
    assert event.route is not None
    assert event.route.standard.version == 2
    assert event.route.standard.targets[Priority.P1].response.total_seconds() == 3


async def test_an_event_id_reused_for_other_content_is_dead_lettered_not_dropped(
    kafka: KafkaSettings,
) -> None:
    raw_topic, routed_topic = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    first = submitted("h-first").model_copy(update={"digest": "a" * 32, "source": "erp"})
    retry = first.model_copy(update={"recorded_at": datetime.now(UTC)})  # same id, same digest
    reused = submitted("h-other").model_copy(
        update={"event_id": first.event_id, "digest": "b" * 32, "source": "erp"}
    )
    marker = submitted("h-marker")
    async with running_routing(kafka), upstream(kafka) as publisher:
        for envelope in (first, retry, reused, marker):
            await publisher.publish(raw_topic, envelope)
        routed = await read_until(kafka, routed_topic, has_ids(marker.event_id))
        dead = await wait_for(
            lambda: read_all(kafka, kafka.topics.dlq(Stream.RAW)), what="the dead letter"
        )
    # same partition or not, the first is routed once and the reuse is refused with a reason
    assert sorted(e.key for e in routed) == ["h-first", "h-marker"]
    (letter,) = dead
    headers = dict(letter.headers)
    assert letter.key == b"h-other" and headers["dlq.code"] == b"event-id-reused"
    assert first.event_id.encode() in headers["dlq.reason"]
