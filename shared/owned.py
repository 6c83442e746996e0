"""Owned partitions: a consumer-group member that owns partitions of a compacted topic and
rebuilds their state from the topic on every assignment.

Delivery semantics: the group only decides who owns which partition, one member at a time;
nothing is ever committed. Each assignment reads the partition from its beginning (compacted:
the last record of every key), hands every record to the owner, says `caught_up(partition)`
once it has read the end offset seen at assignment, and then hands on new records as they
come. An owner therefore always acts on the whole state of its partitions -- what it wrote
itself comes back to it as well -- and a restarted or rescheduled member loses nothing. A
revoke waits for `revoked(partitions)`, so an owner can finish what it does for them before
another member takes them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError

from shared.kafka import close_consumer, start_group_consumer
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


class PartitionOwner(Protocol):
    """What an owner of partitions is told."""

    def assigned(self, partition: int) -> None:
        """The partition is ours: its records follow from the beginning."""
        ...

    def record(self, partition: int, key: bytes, value: bytes | None) -> None:
        """One record of an owned partition, in offset order (value None: a tombstone)."""
        ...

    def caught_up(self, partition: int) -> None:
        """Every record the partition held when it was assigned has been handed on."""
        ...

    async def revoked(self, partitions: list[int]) -> None:
        """The partitions go to another member once this returns."""
        ...


class OwnedTopic:
    """Follows the partitions of `topic` this member owns in `group` (see module docstring)."""

    def __init__(self, kafka: KafkaSettings, topic: str, group: str, owner: PartitionOwner) -> None:
        self._kafka = kafka
        self._topic = topic
        self._group = group
        self._owner = owner
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._restoring: dict[TopicPartition, int | None] = {}  # None: end not read yet
        self.owned: set[int] = set()
        self.restoring: set[int] = set()
        self.joined = asyncio.Event()

    @property
    def running(self) -> bool:
        """True while the follower's task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Join the group and follow, in the background."""
        self._task = asyncio.create_task(self._run(), name=f"{self._group}-owned")

    async def stop(self) -> None:
        """Stop following and leave the group."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await close_consumer(self._consumer)

    def _assign(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            if tp.partition in self.owned:
                continue
            self.owned.add(tp.partition)
            self.restoring.add(tp.partition)
            self._restoring[tp] = None
            self._owner.assigned(tp.partition)
        self.joined.set()

    async def _revoke(self, partitions: Iterable[TopicPartition]) -> None:
        gone = [tp.partition for tp in partitions if tp.partition in self.owned]
        for tp in partitions:
            self._restoring.pop(tp, None)
        self.owned.difference_update(gone)
        self.restoring.difference_update(gone)
        if gone:
            await self._owner.revoked(sorted(gone))

    async def _run(self) -> None:
        self._consumer = await start_group_consumer(
            self._kafka, [self._topic], self._group, _Listener(self), max_records=1000
        )
        consumer = self._consumer
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for tp, records in batches.items():
                if tp.partition not in self.owned:
                    # Fetched before the listener ran (it is told of the assignment after
                    # the fetcher may already have positions): the partition is ours.
                    self._assign([tp])
                for record in records:
                    self._owner.record(tp.partition, record.key or b"", record.value)
            await self._check_restored(consumer)

    async def _check_restored(self, consumer: AIOKafkaConsumer) -> None:
        if not self._restoring:
            return
        missing = [tp for tp, end in self._restoring.items() if end is None]
        if missing:
            with contextlib.suppress(KafkaError):
                ends: dict[TopicPartition, int] = await consumer.end_offsets(missing)
                for tp, end in ends.items():
                    if tp in self._restoring:
                        self._restoring[tp] = end
        for tp, known in list(self._restoring.items()):
            if known is None:
                continue
            try:
                # Position, not the last offset seen: compaction and transaction markers
                # leave gaps, and an empty partition has nothing to hand on.
                position = await consumer.position(tp)
            except (KafkaError, IllegalStateError):
                continue
            if position >= known and tp in self._restoring:
                del self._restoring[tp]
                self.restoring.discard(tp.partition)
                log.info(
                    "%s: partition %d restored (up to offset %d)", self._group, tp.partition, known
                )
                self._owner.caught_up(tp.partition)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, follower: OwnedTopic) -> None:
        self._follower = follower

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._follower._revoke(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._follower._assign(assigned)
