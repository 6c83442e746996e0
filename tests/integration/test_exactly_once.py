"""The shared exactly-once plumbing against the real broker, with a toy state: a counter per
key, kept in the changelog. What it must guarantee whatever the service on top of it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from shared.clock import SystemClock
from shared.exactly_once import ExactlyOnceConsumer, Output, Record, Transaction
from shared.kafka import Publisher
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import read_all, wait_for


class Counting:
    """Counts records per key; the changelog holds each key's count."""

    def __init__(self, partition: int, changelog: str, out: str) -> None:
        self.partition = partition
        self.counts: dict[bytes, int] = {}
        self._changelog = changelog
        self._out = out

    def load(self, records: Sequence[Record]) -> None:
        for r in records:
            self.counts[r.key or b""] = int(r.value or b"0")

    def loaded(self, now: datetime) -> None:
        pass

    def process(self, records: Sequence[Record], now: datetime) -> Transaction:
        outputs = []
        for r in records:
            if r.value == b"boom":
                raise RuntimeError("a bug in the use case")
            key = r.key or b""
            self.counts[key] = self.counts.get(key, 0) + 1
            value = str(self.counts[key]).encode()
            outputs.append(Output(self._out, key, value, partition=self.partition))
            outputs.append(Output(self._changelog, key, value, partition=self.partition))
        return Transaction(outputs)

    def tick(self, now: datetime) -> Transaction | None:
        return None

    def next_wake(self) -> datetime | None:
        return None


class Seen:
    """The plumbing's Observer: what was restored, fully or by catching up."""

    def __init__(self) -> None:
        self.restores: list[tuple[int, int, bool]] = []

    def transaction(self, seconds: float) -> None:
        pass

    def restored(self, partition: int, seconds: float, records: int, full: bool) -> None:
        self.restores.append((partition, records, full))


def member(kafka: KafkaSettings, seen: Seen) -> ExactlyOnceConsumer:
    topics = kafka.topics
    changelog, out = topics.name(Stream.SLA_STATE), topics.name(Stream.DECISIONS)
    return ExactlyOnceConsumer(
        kafka,
        topic=topics.name(Stream.ROUTED),
        changelog=changelog,
        group=kafka.group("eo-test"),
        clock=SystemClock(),
        factory=lambda p: Counting(p, changelog, out),
        observer=seen,
    )


async def send(kafka: KafkaSettings, items: list[tuple[bytes, bytes]]) -> None:
    publisher = Publisher(kafka, client_id="test")
    await publisher.start(wait=True)
    try:
        topic = kafka.topics.name(Stream.ROUTED)
        futures = [await publisher.send(topic, v, key=k, headers=[]) for k, v in items]
        await asyncio.gather(*futures)
    finally:
        await publisher.stop()


async def test_a_partition_whose_worker_died_makes_the_instance_not_ready(
    kafka: KafkaSettings,
) -> None:
    consumer = member(kafka, Seen())
    await consumer.start()
    try:
        await wait_for(lambda: consumer.ready, what="ready")
        await send(kafka, [(b"k1", b"boom")])
        await wait_for(lambda: not consumer.ready, what="not ready once a worker died")
    finally:
        await consumer.stop()


async def test_a_partition_kept_through_a_rebalance_is_caught_up_not_restored(
    kafka: KafkaSettings,
) -> None:
    first_seen, second_seen = Seen(), Seen()
    first = member(kafka, first_seen)
    await first.start()
    second = member(kafka, second_seen)
    try:
        await wait_for(lambda: first.ready, what="first ready")
        await send(kafka, [(f"k{i}".encode(), b"x") for i in range(40)])
        decisions = kafka.topics.name(Stream.DECISIONS)

        async def counted(n: int) -> bool:
            return len(await read_all(kafka, decisions)) >= n

        await wait_for(lambda: counted(40), what="first counted everything")
        assert {full for _, _, full in first_seen.restores} == {True}
        first_seen.restores.clear()
        await second.start()  # joins: the group rebalances, some partitions move
        await wait_for(lambda: first.ready and second.ready, what="both ready")
        kept = set(first.states())
        assert kept and all(
            not full and records == 0 for p, records, full in first_seen.restores if p in kept
        )
        moved = {p for p, _, full in second_seen.restores if full}
        assert moved and not moved & kept
        # Counting goes on from where it was, on both sides of the move.
        await send(kafka, [(f"k{i}".encode(), b"x") for i in range(40)])
        await wait_for(lambda: counted(80), what="second round counted")
        values = sorted(r.value for r in await read_all(kafka, decisions))
        assert values == [b"1"] * 40 + [b"2"] * 40
    finally:
        await second.stop()
        await first.stop()
