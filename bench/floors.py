"""Same-run floors for the sla benchmarks: what bare aiokafka does on the same broker, now.

Absolute times move between machines (and between runs on a shared one); a floor measured in
the same run, on the same broker, with the same records, does not move with them. Every sla
benchmark prints its figure beside one of these and the ratio:

- `read_floor`: a bare read_committed read of a changelog partition (what any rebuild costs
  before a single record is decoded), with and without touching every record's bytes;
- `roundtrip_floor`: a transactional produce -> read_committed consume round trip (the least a
  missed decision can take to become visible);
- `transact_floor`: a bare consume -> transactional produce loop, one output record per input
  record, offsets committed in the transaction (exactly-once plumbing with no use case).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.kafka import client_options, ensure_topics
from shared.settings import KafkaSettings
from shared.topics import TopicSpec


@dataclass(frozen=True)
class Ratio:
    """A figure beside its floor."""

    figure: float
    floor: float

    @property
    def ratio(self) -> float:
        """figure / floor (for times: how many floors the figure costs)."""
        return self.figure / self.floor if self.floor else float("inf")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of values (nearest rank); 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def read_floor(kafka: KafkaSettings, tp: TopicPartition) -> tuple[float, int]:
    """Seconds to read one partition from the beginning to its end, read_committed, with the
    restore's fetch sizes, touching each record's key and value; and the record count."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
        **client_options(kafka),
    )
    await consumer.start()
    count = size = 0
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        started = time.perf_counter()
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            for record in batch.get(tp, ()):
                count += 1
                size += len(record.key or b"") + len(record.value or b"")
        return time.perf_counter() - started, count
    finally:
        await consumer.stop()


async def roundtrip_floor(kafka: KafkaSettings, samples: int = 300) -> list[float]:
    """Milliseconds from beginning a one-record transaction to reading the record back with
    read_committed, `samples` times one after another."""
    topic = f"{kafka.topic_prefix}bench.floor.roundtrip"
    await ensure_topics(kafka, [TopicSpec(topic, 1)])
    producer = AIOKafkaProducer(
        transactional_id=f"floor-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        retry_backoff_ms=10,
        **client_options(kafka),
    )
    consumer = AIOKafkaConsumer(
        topic,
        isolation_level="read_committed",
        auto_offset_reset="latest",
        fetch_max_wait_ms=5,
        **client_options(kafka),
    )
    await producer.start()
    await consumer.start()
    out: list[float] = []
    try:
        await consumer.getmany(timeout_ms=500)  # assigned, positioned at the end
        for i in range(samples):
            started = time.perf_counter()
            async with producer.transaction():
                await producer.send(topic, b"x" * 400, key=str(i).encode())
            seen = False
            while not seen:
                batches = await consumer.getmany(timeout_ms=50)
                seen = any(records for records in batches.values())
            out.append((time.perf_counter() - started) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return out


async def transact_floor(kafka: KafkaSettings, topic: str, expected: int) -> float:
    """Records/s of a bare exactly-once loop over `topic` (all its partitions): fetch, then per
    partition one transaction with one copied record per input record and the offsets."""
    group = f"{kafka.topic_prefix}floor-{uuid.uuid4().hex[:6]}"
    out_topic = f"{kafka.topic_prefix}bench.floor.copy"
    await ensure_topics(kafka, [TopicSpec(out_topic, kafka.partitions)])
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=1000,
        **client_options(kafka),
    )
    await consumer.start()
    producers: dict[int, AIOKafkaProducer] = {}
    done = 0
    started: float | None = None
    try:

        async def transact(tp: TopicPartition, records: list) -> None:  # type: ignore[type-arg]
            producer = producers.get(tp.partition)
            if producer is None:
                producer = producers[tp.partition] = AIOKafkaProducer(
                    transactional_id=f"{group}-{tp.partition}",
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=0,
                    retry_backoff_ms=10,
                    **client_options(kafka),
                )
                await producer.start()
            async with producer.transaction():
                for r in records:
                    await producer.send(out_topic, r.value, key=r.key, partition=tp.partition)
                await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)

        while done < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=6000)
            if not batches:
                continue
            if started is None:
                started = time.perf_counter()
            await asyncio.gather(*(transact(tp, rs) for tp, rs in batches.items() if rs))
            done += sum(len(rs) for rs in batches.values())
        assert started is not None
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        for producer in producers.values():
            await producer.stop()
