"""Handoffs that chain along the map, on the real broker: a completion on the raw topic opens the
next handoff of the case (on the raw topic, routed in turn), routing remembers open handoffs in
its changelog across a restart, and a redelivered or repeated completion opens nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from builders import ADMIN_KEYS
from routing.main import create_app
from routing.settings import Settings
from shared.events import (
    Envelope,
    HandoffCompletedV1,
    HandoffRatedV1,
    HandoffSubmittedV1,
    make_envelope,
)
from shared.kafka import Publisher
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import read_all, read_until, wait_for


@asynccontextmanager
async def routing(kafka: KafkaSettings) -> AsyncIterator[FastAPI]:
    """routing with the example map, once its map is in force and its consumers joined."""
    app = create_app(Settings(kafka=kafka, api_keys=ADMIN_KEYS))
    async with app.router.lifespan_context(app):
        await wait_for(
            lambda: app.state.maps.loaded and app.state.consumer.joined.is_set(),
            within=60,
            what="routing ready",
        )
        yield app


@asynccontextmanager
async def upstream(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    publisher = Publisher(kafka, client_id="test-upstream")
    await publisher.start(wait=True)
    try:
        yield publisher
    finally:
        await publisher.stop()


def posted(handoff_id: str, **attributes: Any) -> Envelope:
    now = datetime.now(UTC)
    payload = HandoffSubmittedV1.model_validate(
        {
            "case_id": f"order-{handoff_id}",
            "kind": "pick-request",
            "from": "sales",
            "priority": "P2",
            "attributes": attributes,
        }
    )
    return make_envelope(
        payload,
        key=handoff_id,
        producer="intake",
        occurred_at=now,
        recorded_at=now,
        event_id=f"{handoff_id}-s",
        correlation_id=payload.case_id,
    )


def completed(handoff_id: str, event_id: str | None = None) -> Envelope:
    now = datetime.now(UTC)
    return make_envelope(
        HandoffCompletedV1(actor="team"),
        key=handoff_id,
        producer="intake",
        occurred_at=now,
        recorded_at=now,
        event_id=event_id or f"{handoff_id}-c",
    )


def routed_to(handoff_id: str, team: str) -> Any:
    return lambda es: any(
        e.key == handoff_id and e.route is not None and e.route.to_process == team for e in es
    )


async def test_a_completion_opens_the_next_handoff_which_is_routed_in_turn(
    kafka: KafkaSettings,
) -> None:
    raw, routed = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    async with routing(kafka), upstream(kafka) as publisher:
        await publisher.publish(raw, posted("po-1", credit_check=True))
        await read_until(kafka, routed, routed_to("po-1", "credit-control"))
        await publisher.publish(raw, completed("po-1"))
        out = await read_until(kafka, routed, routed_to("po-1+1", "warehouse"))

    (following,) = [e for e in out if e.key == "po-1+1"]
    assert following.route is not None
    assert following.route.standard.route_id == "released-order"
    assert (following.correlation_id, following.causation_id) == ("order-po-1", "po-1-c")
    assert following.chain is not None
    assert (following.chain.root, following.chain.depth, following.chain.previous) == (
        "po-1",
        1,
        "po-1",
    )
    assert following.data["attributes"] == {"credit_check": True}
    # Routing's changelog: the first handoff was remembered, then forgotten when it closed;
    # the second is remembered on the partition its own events are on.
    rows = await read_all(kafka, kafka.topics.name(Stream.HANDOFFS))
    assert [r.value is None for r in rows if r.key == b"po-1"] == [False, True]
    raw_partition = {r.key: r.partition for r in await read_all(kafka, raw)}
    assert {r.key: r.partition for r in rows} == raw_partition


async def test_a_restarted_routing_knows_the_handoffs_opened_before(kafka: KafkaSettings) -> None:
    raw, routed = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    async with upstream(kafka) as publisher:
        async with routing(kafka):
            await publisher.publish(raw, posted("po-2"))
            await read_until(kafka, routed, routed_to("po-2", "warehouse"))
        async with routing(kafka):  # another instance: restores the partition first
            await publisher.publish(raw, completed("po-2"))
            out = await read_until(kafka, routed, routed_to("po-2+1", "shipping"))
    (following,) = [e for e in out if e.key == "po-2+1"]
    assert following.route is not None and following.route.standard.route_id == "shipment"


async def test_a_redelivered_or_repeated_completion_opens_the_next_handoff_once(
    kafka: KafkaSettings,
) -> None:
    raw, routed = kafka.topics.name(Stream.RAW), kafka.topics.name(Stream.ROUTED)
    async with routing(kafka), upstream(kafka) as publisher:
        await publisher.publish(raw, posted("po-3"))
        await read_until(kafka, routed, routed_to("po-3", "warehouse"))
        await publisher.publish(raw, completed("po-3"))
        await publisher.publish(raw, completed("po-3"))  # redelivered (same event id)
        await publisher.publish(raw, completed("po-3", "po-3-c-again"))  # posted twice
        await read_until(kafka, routed, routed_to("po-3+1", "shipping"))
        # Handled in order on po-3's partition: once the rating passed, so did the repeats.
        now = datetime.now(UTC)
        rating = make_envelope(
            HandoffRatedV1(rating=5),
            key="po-3",
            producer="intake",
            occurred_at=now,
            recorded_at=now,
        )
        await publisher.publish(raw, rating)
        await read_until(kafka, routed, lambda es: any(e.event_id == rating.event_id for e in es))

    opened = [
        Envelope.from_bytes(r.value)
        for r in await read_all(kafka, raw)
        if r.key == b"po-3+1" and r.value is not None
    ]
    submissions = [e for e in opened if e.event_type == "handoff.submitted"]
    assert len({e.event_id for e in submissions}) == 1
    assert len(submissions) == 1  # the repeat found the handoff closed: nothing opened again
