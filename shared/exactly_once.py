"""Exactly-once stream processing per partition, written once, behind typed wrappers.

Delivery semantics: exactly-once per input partition. A consumer-group member (read_committed,
manual offsets, sticky assignment) hands every assigned partition to a worker with its own
transactional producer (`transactional.id = <group>-<topic>-<partition>`) and its own state
(a `PartitionState` the service supplies). Every batch of input records, and every timer
wake-up, is one Kafka transaction holding what the state returned -- outputs on any topic,
the changelog records of what changed (same partition number as the input) -- and, for input
batches, the consumer offsets. Readers use read_committed, so a crash at any point leaves all
of a transaction or none of it.

- Fencing: when a partition moves to another instance (rebalance, or a restart after
  SIGKILL), the new owner's `init_transactions` with the same transactional id fences the old
  producer and aborts its open transaction, so a stalled old owner can never commit twice.
- Restore: the new owner then rebuilds the partition's state from its compacted changelog
  (read_committed) and resumes from the committed offset.
- Sticky: aiokafka speaks the eager protocol, which revokes every partition at each rejoin.
  A revoked partition's state is parked rather than dropped, with the changelog offset it
  reflects; if the same instance gets the partition back (the sticky assignor keeps it there
  whenever it can), the worker fences again and reads only the changelog records written since
  -- none unless another instance owned the partition meanwhile. Only what moved is restored.
- Failure: if a transaction fails, the in-memory state may be ahead of Kafka: it is dropped
  and rebuilt from the changelog, and the consumer rewinds to the committed offset, so nothing
  is lost and outputs with deterministic keys come out the same.
- Inbox and pump: the fetch loop never waits for a transaction; records that arrive during
  one are committed together in the next (natural batching, no head-of-line blocking across
  partitions), and a partition whose inbox grows too long is paused (backpressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import KafkaError, ProducerFenced

from shared.clock import Clock
from shared.heap import built_to_last
from shared.kafka import client_options, close_consumer, start_group_consumer
from shared.retry import Backoff
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
_LOAD_SLICE = 1000
"""Changelog records applied between two yields to the event loop during a restore."""


class Record(Protocol):
    """One consumed record, as the plumbing hands it to a partition's state."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Output:
    """One record a transaction writes, to a given partition (the same as its input's, for
    anything keyed like the input: one partition keeps a key's order everywhere)."""

    topic: str
    key: bytes
    value: bytes | None
    headers: Headers = field(default_factory=list)
    partition: int | None = None
    """Required: the exactly-once plumbing sends by partition."""


@dataclass(slots=True)
class Transaction:
    """What one transaction writes, and who to tell once it is committed."""

    outputs: list[Output] = field(default_factory=list)
    committed: Callable[[datetime], None] | None = None
    """Called with the commit instant once the transaction is committed (telemetry)."""


class PartitionState(Protocol):
    """A service's state of one input partition: rebuilt from the changelog, moved by records
    and by time. Every method is synchronous and pure of I/O: the plumbing does the I/O."""

    def load(self, records: Sequence[Record]) -> None:
        """Apply changelog records, in offset order (restore or catch-up)."""
        ...

    def loaded(self, now: datetime) -> None:
        """The changelog has been read to its end: arm timers, build indexes."""
        ...

    def process(self, records: Sequence[Record], now: datetime) -> Transaction:
        """Input records (in offset order) -> what to write, changelog records included."""
        ...

    def tick(self, now: datetime) -> Transaction | None:
        """What time alone makes due by `now`, a bounded amount at once; None once nothing is."""
        ...

    def next_wake(self) -> datetime | None:
        """The next instant `tick` has something to do (None: nothing pending)."""
        ...


class Observer(Protocol):
    """What the plumbing reports about itself (the service's telemetry)."""

    def transaction(self, seconds: float) -> None:
        """One transaction committed, taking `seconds`."""
        ...

    def restored(self, partition: int, seconds: float, records: int, full: bool) -> None:
        """A partition's state was rebuilt (`full`) or caught up from its changelog."""
        ...


class TransactionFailed(Exception):
    """A transaction did not commit: the state must be rebuilt from the changelog."""


def sticky_assignor() -> type[StickyPartitionAssignor]:
    """aiokafka's sticky assignor, with its own copy of the previous assignment.

    The upstream class keeps the member's last assignment in class attributes: two group
    members in one process (tests, benchmarks) would share and overwrite it, so every
    consumer gets its own subclass.
    """
    attrs = {"member_assignment": None, "generation": StickyPartitionAssignor.generation}
    return type("StickyAssignor", (StickyPartitionAssignor,), attrs)


@dataclass
class _Parked:
    """A revoked partition's state, kept in case the partition comes back."""

    state: PartitionState
    changelog_offset: int
    since: float


class _Worker:
    """One assigned partition: its state, transactional producer, inbox, pump and timer."""

    def __init__(
        self,
        tp: TopicPartition,
        state: PartitionState,
        owner: ExactlyOnceConsumer,
    ) -> None:
        self.tp = tp
        self.state = state
        self._owner = owner
        self.changelog = TopicPartition(owner.changelog, tp.partition)
        self.changelog_offset = 0
        """The changelog offset the state reflects everything before."""
        self._lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None
        self._timer: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._rearm = asyncio.Event()
        self._armed: datetime | None = None
        self._inbox: list[Any] = []
        self._next_offset: int | None = None
        self._arrived = asyncio.Event()
        self.up = False

    @property
    def transactional_id(self) -> str:
        """One per input partition, stable across instances: the fencing key."""
        return f"{self._owner.group}-{self.tp.topic}-{self.tp.partition}"

    @property
    def alive(self) -> bool:
        """Up, and both its pump and its timer still running."""
        tasks = (self._pump, self._timer)
        return self.up and all(t is not None and not t.done() for t in tasks)

    # ------------------------------------------------------------------ life cycle

    async def bring_up(self, catch_up_from: int | None) -> None:
        """Fence any previous owner, rebuild (or catch up) the state, start pump and timer."""
        await self._open_producer()
        await self._read_changelog(catch_up_from)
        self._timer = asyncio.create_task(self._run_timer(), name=f"eo-timer-{self.tp}")
        self._pump = asyncio.create_task(self._run_pump(), name=f"eo-pump-{self.tp}")
        for task in (self._timer, self._pump):
            task.add_done_callback(self._died)
        self.up = True

    def _died(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "partition %s: %s died; the partition is not ready",
                self.tp,
                task.get_name(),
                exc_info=task.exception(),
            )

    async def stop(self) -> None:
        """Let the transaction in hand finish, then close. Records still in the inbox are
        not committed: the partition's next owner reads them again."""
        async with self._lock:
            self.up = False
            tasks = [t for t in (self._timer, self._pump) if t is not None]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._inbox.clear()
            self._next_offset = None
            await self._close_producer()

    async def _open_producer(self) -> None:
        producer = AIOKafkaProducer(
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=0,
            # A transaction begun right after the previous one is answered CONCURRENT_TRANSACTIONS
            # while the coordinator writes the markers; aiokafka retries after this backoff
            # (default 100 ms, which showed up as a ~200 ms p99 end to end).
            retry_backoff_ms=10,
            # A transaction's records for one partition go as one batch where they fit.
            max_batch_size=1024 * 1024,
            **client_options(self._owner.kafka),
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer

    async def _close_producer(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    async def _read_changelog(self, start: int | None) -> None:
        """Load the changelog from `start` (None: from the beginning) to its end."""
        started = time.perf_counter()
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
            **client_options(self._owner.kafka),
        )
        await consumer.start()
        tp = self.changelog
        count = 0
        try:
            consumer.assign([tp])
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
            end = (await consumer.end_offsets([tp]))[tp]
            # The state is a bulk build that lives long: no collector passes over it.
            with built_to_last():
                while (position := await consumer.position(tp)) < end:
                    batch = await consumer.getmany(
                        tp, timeout_ms=1000, max_records=self._owner.restore_batch
                    )
                    records = batch.get(tp, ())
                    count += len(records)
                    for i in range(0, len(records), _LOAD_SLICE):
                        self.state.load(records[i : i + _LOAD_SLICE])
                        # Restoring is CPU-bound on the one event loop: the partitions that are up
                        # keep deciding, and heartbeats keep going, between two slices.
                        await asyncio.sleep(0)
            self.changelog_offset = max(position, start or 0)
        finally:
            await close_consumer(consumer)
        self.state.loaded(self._owner.clock.now())
        seconds = time.perf_counter() - started
        self._owner.observer.restored(self.tp.partition, seconds, count, start is None)
        log.info(
            "partition %s: %s from %d changelog records in %.2fs",
            self.tp,
            "restored" if start is None else "caught up",
            count,
            seconds,
        )

    # ------------------------------------------------------------------ input

    def offer(self, records: Sequence[Any]) -> int:
        """Hand over fetched records (in offset order); returns the backlog length.

        After a failed transaction the consumer is rewound to the committed offset: records
        fetched before the rewind that do not continue where the state stands are dropped
        (they come again), so nothing is skipped and nothing applied twice.
        """
        if self._next_offset is not None:
            records = [r for r in records if r.offset >= self._next_offset]
            if records and records[0].offset != self._next_offset:
                return len(self._inbox)
        if records:
            self._inbox.extend(records)
            self._next_offset = records[-1].offset + 1
            self._arrived.set()
        return len(self._inbox)

    async def _run_pump(self) -> None:
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            while self._inbox:
                batch = self._inbox[: self._owner.max_per_transaction]
                del self._inbox[: len(batch)]
                try:
                    await self.process(batch)
                except ProducerFenced:
                    return  # a newer owner has this partition; the rebalance revokes ours
                except TransactionFailed as exc:
                    log.warning("partition %s: transaction failed (%s); rebuilding", self.tp, exc)
                    self._inbox.clear()
                    await self._rebuild()
                    self._next_offset = await self._owner.rewind(self.tp)
                    break
            self._owner.drained(self.tp)

    async def process(self, records: Sequence[Any]) -> None:
        """Apply a batch of input records and commit its outputs with its offsets."""
        async with self._lock:
            transaction = self.state.process(records, self._owner.clock.now())
            await self._commit(transaction, {self.tp: records[-1].offset + 1})
        self._maybe_rearm()

    async def _rebuild(self) -> None:
        """After a failed transaction: new producer (aborts the open transaction), state
        rebuilt from the changelog."""
        async with self._lock:
            await self._close_producer()
            self.state = self._owner.factory(self.tp.partition)
            backoff = Backoff(0.2, 5.0)
            while True:
                try:
                    await self._open_producer()
                    await self._read_changelog(None)
                    break
                except KafkaError as exc:
                    log.warning("partition %s: rebuild failed (%s); retrying", self.tp, exc)
                    await self._close_producer()
                    self.state = self._owner.factory(self.tp.partition)
                    await backoff.wait()
        self._rearm.set()

    async def _commit(
        self, transaction: Transaction, offsets: dict[TopicPartition, int] | None
    ) -> None:
        producer = self._producer
        if producer is None:
            raise TransactionFailed("no producer")
        started = time.perf_counter()
        changelog_sent: tuple[Any, int] | None = None
        try:
            async with producer.transaction():
                for (topic, partition), outs in _by_partition(transaction.outputs).items():
                    sent = await _send(producer, topic, partition, outs)
                    if topic == self.changelog.topic and partition == self.tp.partition:
                        changelog_sent = sent
                if offsets:
                    await producer.send_offsets_to_transaction(offsets, self._owner.group)
        except ProducerFenced:
            log.error("partition %s: fenced by a newer owner; giving it up", self.tp)
            raise
        except Exception as exc:
            raise TransactionFailed(f"{type(exc).__name__}: {exc}") from exc
        if changelog_sent is not None:
            future, count = changelog_sent
            self.changelog_offset = future.result().offset + count
        self._owner.observer.transaction(time.perf_counter() - started)
        if transaction.committed is not None:
            transaction.committed(self._owner.clock.now())

    # ------------------------------------------------------------------ timer

    def _maybe_rearm(self) -> None:
        wake = self.state.next_wake()
        if wake is not None and (self._armed is None or wake < self._armed):
            self._rearm.set()

    async def _run_timer(self) -> None:
        clock = self._owner.clock
        while True:
            wake = self.state.next_wake()
            self._armed = wake
            self._rearm.clear()
            waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._rearm.wait())]
            if wake is not None:
                waiters.append(asyncio.create_task(clock.sleep_until(wake)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waiters:
                    task.cancel()
            if self._rearm.is_set():
                continue
            try:
                await self.fire()
            except ProducerFenced:
                return
            except TransactionFailed as exc:
                log.warning("partition %s: timer transaction failed (%s)", self.tp, exc)
                await self._rebuild()

    async def fire(self) -> None:
        """Commit everything time has made due (one bounded transaction after another)."""
        async with self._lock:
            while True:
                transaction = self.state.tick(self._owner.clock.now())
                if transaction is None:
                    return
                await self._commit(transaction, None)


def _by_partition(outputs: Sequence[Output]) -> dict[tuple[str, int], list[Output]]:
    """Outputs grouped by (topic, partition), each group in its original order."""
    groups: dict[tuple[str, int], list[Output]] = {}
    for out in outputs:
        if out.partition is None:
            raise ValueError(f"an exactly-once output to {out.topic} needs its partition")
        groups.setdefault((out.topic, out.partition), []).append(out)
    return groups


async def _send(
    producer: AIOKafkaProducer, topic: str, partition: int, outputs: Sequence[Output]
) -> tuple[Any, int]:
    """Append records to batches of one partition and hand them to the producer: no
    per-record coroutine and no partitioner on the hot path. Returns the future of the last
    batch and its record count (its last offset is the batch's base offset + count - 1)."""
    future: Any = None
    builder = producer.create_batch()
    count = 0
    for out in outputs:
        if builder.append(timestamp=None, key=out.key, value=out.value, headers=out.headers):
            count += 1
            continue
        if count:
            await producer.send_batch(builder, topic, partition=partition)
            builder, count = producer.create_batch(), 0
        if not builder.append(timestamp=None, key=out.key, value=out.value, headers=out.headers):
            # Larger than a batch on its own: the producer sends it by itself.
            future = await producer.send(
                topic, out.value, key=out.key, headers=out.headers, partition=partition
            )
            builder, count = producer.create_batch(), 0
            continue
        count = 1
    if count:
        future = await producer.send_batch(builder, topic, partition=partition)
        return future, count
    return future, 1


class ExactlyOnceConsumer:
    """The consumer-group member: partitions to workers, records to their inboxes."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        changelog: str,
        group: str,
        clock: Clock,
        factory: Callable[[int], PartitionState],
        observer: Observer,
        max_records: int = 200,
        max_backlog: int = 5000,
        max_per_transaction: int = 1000,
        restore_batch: int = 10_000,
        keep_parked_s: float = 300.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.changelog = changelog
        self.group = group
        self.clock = clock
        self.factory = factory
        self.observer = observer
        self.max_per_transaction = max_per_transaction
        self.restore_batch = restore_batch
        self._max_records = max_records
        self._max_backlog = max_backlog
        self._keep_parked_s = keep_parked_s
        self.workers: dict[TopicPartition, _Worker] = {}
        self._parked: dict[TopicPartition, _Parked] = {}
        self._bringing_up: dict[TopicPartition, asyncio.Task[None]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.joined = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Joined the group, and every assigned partition has a worker that is up and alive."""
        consumer = self._consumer
        if not self.joined.is_set() or consumer is None or self._task is None:
            return False
        if self._task.done():
            return False
        return all(tp in self.workers and self.workers[tp].alive for tp in consumer.assignment())

    def states(self) -> dict[int, PartitionState]:
        """The state of every partition this member works on now."""
        return {tp.partition: w.state for tp, w in list(self.workers.items()) if w.up}

    async def start(self) -> None:
        """Join the group in the background."""
        self._task = asyncio.create_task(self._run(), name=f"{self.group}-exactly-once")

    async def stop(self) -> None:
        """Stop consuming, let workers finish their transaction, leave the group."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in self._bringing_up.values():
            task.cancel()
        for task in list(self._bringing_up.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        self.workers.clear()
        self._parked.clear()
        if self._consumer is not None:
            await close_consumer(self._consumer)

    def _created(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer  # the rebalance listener pauses partitions through it

    async def _run(self) -> None:
        self._consumer = await start_group_consumer(
            self.kafka,
            [self.topic],
            self.group,
            _Rebalance(self),
            self._max_records,
            self._created,
            partition_assignment_strategy=(sticky_assignor(),),
        )
        while not self._stopping:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=self._max_records)
            for tp, records in batches.items():
                self._hand_over(tp, records)

    def _hand_over(self, tp: TopicPartition, records: list[Any]) -> None:
        consumer = self._consumer
        assert consumer is not None
        if not records:
            return
        worker = self.workers.get(tp)
        if worker is None or not worker.up:
            # Fetched before its worker was up (or after it left): never drop records --
            # rewind so they are fetched again once a worker owns the partition.
            if tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
            return
        if worker.offer(records) > self._max_backlog and tp in consumer.assignment():
            consumer.pause(tp)  # backpressure: resumed when the worker has drained its inbox

    def drained(self, tp: TopicPartition) -> None:
        """A worker emptied its inbox: fetch for it again."""
        consumer = self._consumer
        worker = self.workers.get(tp)
        if (
            consumer is not None
            and worker is not None
            and worker.up
            and tp in consumer.assignment()
            and tp in consumer.paused()
        ):
            consumer.resume(tp)

    async def rewind(self, tp: TopicPartition) -> int:
        """Seek a partition back to its committed offset (after a failed transaction)."""
        assert self._consumer is not None
        committed = await self._consumer.committed(tp) or 0
        if tp in self._consumer.assignment():
            self._consumer.seek(tp, committed)
        return committed

    # ------------------------------------------------------------------ rebalancing

    async def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Bring up a worker for each newly assigned partition, in the background: parked
        state is caught up, anything else is restored; the partition is fetched once it is."""
        now = time.monotonic()
        for tp, old in list(self._parked.items()):
            if now - old.since > self._keep_parked_s:
                del self._parked[tp]  # too old to trust its catch-up (tombstones expire)
        new = [tp for tp in partitions if tp not in self.workers]
        if self._consumer is not None and new:
            # No record of a partition may be handed out before its state is up.
            self._consumer.pause(*new)
        for tp in new:
            parked = self._parked.pop(tp) if tp in self._parked else None
            state = parked.state if parked is not None else self.factory(tp.partition)
            worker = _Worker(tp, state, self)
            if parked is not None:
                worker.changelog_offset = parked.changelog_offset
            self.workers[tp] = worker
            start = parked.changelog_offset if parked is not None else None
            self._bringing_up[tp] = asyncio.create_task(
                self._bring_up(worker, start), name=f"eo-bring-up-{tp}"
            )
        # Parked partitions that went elsewhere are of no use any more.
        for tp in [tp for tp in self._parked if tp not in partitions]:
            del self._parked[tp]
        self.joined.set()

    async def _bring_up(self, worker: _Worker, start: int | None) -> None:
        # Kafka may be briefly unreachable during a rebalance: retry rather than leave the
        # partition without an owner (readiness stays false meanwhile).
        backoff = Backoff(0.5, 10.0)
        tp = worker.tp
        try:
            while True:
                try:
                    await worker.bring_up(start)
                    break
                except KafkaError as exc:
                    log.warning("partition %s: start failed (%s); retrying", tp, exc)
                    await worker.stop()
                    worker.state = self.factory(tp.partition)
                    start = None
                    await backoff.wait()
            consumer = self._consumer
            if consumer is not None and tp in consumer.assignment():
                consumer.resume(tp)
        finally:
            self._bringing_up.pop(tp, None)

    async def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Park the workers of revoked partitions (their state is kept in case they come
        back); a worker still coming up is abandoned."""
        gone = [tp for tp in partitions if tp in self.workers]
        for tp in gone:
            task = self._bringing_up.pop(tp, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        workers = [self.workers.pop(tp) for tp in gone]
        # Only a state that was up and whose tasks never died reflects its changelog exactly.
        keep = [w for w in workers if w.alive]
        await asyncio.gather(*(w.stop() for w in workers))
        now = time.monotonic()
        for worker in keep:
            self._parked[worker.tp] = _Parked(worker.state, worker.changelog_offset, now)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ExactlyOnceConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._owner.assigned(assigned)
