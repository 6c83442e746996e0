"""What Baton relies on from the broker, proved against the real Kafka 4.x we run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import client_options, ensure_topics
from shared.topics import Stream, TopicSpec
from support import Broker, fresh_settings, read_all


@pytest.fixture(scope="module")
def restartable_broker() -> Iterator[Broker]:
    """A broker of its own: this module restarts it, the session broker stays up."""
    b = Broker(19192, "smoke")
    b.clean()
    b.start()
    yield b
    b.clean()


async def test_registry_topics_are_created_with_partitions_and_compaction(kafka) -> None:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        state = kafka.topics.name(Stream.SLA_STATE)
        described = await admin.describe_topics([state, kafka.topics.name(Stream.ROUTED)])
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        assert partitions == {state: 2, kafka.topics.name(Stream.ROUTED): 2}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, state)])
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
    finally:
        await admin.close()
    await ensure_topics(kafka)  # a second run is a no-op, not an error


async def test_idempotent_acks_all_produce_and_group_commits_survive_a_broker_restart(
    restartable_broker: Broker,
) -> None:
    kafka = fresh_settings(restartable_broker.bootstrap, partitions=1)
    topic = f"{kafka.topic_prefix}smoke"
    await ensure_topics(kafka, [TopicSpec(topic, 1, {"cleanup.policy": "compact"})])

    producer = AIOKafkaProducer(enable_idempotence=True, acks="all", **client_options(kafka))
    await producer.start()
    for i in range(10):
        await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i % 5}".encode())
    await producer.stop()

    group = f"{kafka.topic_prefix}group"
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_options(kafka),
    )
    await consumer.start()
    tp = TopicPartition(topic, 0)
    seen = []
    while len(seen) < 6:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            seen.extend(records)
    await consumer.commit({tp: 6})  # manual commit of the first six only
    await consumer.stop()

    restartable_broker.stop()
    restartable_broker.start()

    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_options(kafka),
    )
    await consumer.start()
    try:
        assert await consumer.committed(tp) == 6
        rest = []
        while len(rest) < 4:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                rest.extend(records)
        assert [r.value for r in rest] == [b"v6", b"v7", b"v8", b"v9"]
    finally:
        await consumer.stop()
    everything = await read_all(kafka, topic)
    assert [r.value for r in everything][:10] == [f"v{i}".encode() for i in range(10)]


async def test_transactions_commit_outputs_and_offsets_atomically(kafka) -> None:
    """sla's exactly-once rests on this: aborted writes stay invisible to read_committed."""
    topic = kafka.topics.name(Stream.DECISIONS)
    producer = AIOKafkaProducer(transactional_id=f"{kafka.topic_prefix}tx", **client_options(kafka))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed", key=b"h1")
        with pytest.raises(RuntimeError):
            async with producer.transaction():
                await producer.send(topic, b"aborted", key=b"h1")
                raise RuntimeError("crash inside the transaction")
        async with producer.transaction():
            await producer.send(topic, b"after", key=b"h1")
    finally:
        await producer.stop()
    values = [r.value for r in await read_all(kafka, topic)]
    assert values == [b"committed", b"after"]
