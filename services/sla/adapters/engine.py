"""The sla service on Kafka: one worker per assigned partition, exactly-once by transactions.

Delivery semantics: exactly-once per input partition. Each partition of `handoff.routed.v1`
has a worker with its own transactional producer (`transactional.id = <group>-<topic>-<p>`).
Every batch of input records, and every timer wake-up, is one Kafka transaction holding the
decisions (`sla.decisions.v1`), the status rows (`sla.status.v1`), the changelog records of
the handoffs it changed (`sla.state.v1`, same partition number), dead letters, and -- for
input batches -- the consumer offsets. Readers use read_committed, so a crash at any point
leaves either all of it or none of it.

Why a producer per partition: when a partition moves to another instance (rebalance, or a
restart after SIGKILL), the new owner's `init_transactions` with the same transactional id
fences the old producer and aborts its open transaction, so a stalled old owner can never
commit decisions twice. The new owner then rebuilds the partition's state from the
changelog (read_committed, compacted) and resumes from the committed offset.

If a transaction fails, the in-memory state may be ahead of Kafka: the worker rebuilds it
from the changelog and the consumer rewinds to the committed offset, so nothing is lost and
decision ids (deterministic) come out the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, ProducerFenced
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.clock import Clock
from shared.events import Envelope
from shared.kafka import (
    DecodeError,
    ProcessedCounter,
    Rejected,
    client_options,
    decode,
    failure_headers,
    start_group_consumer,
)
from shared.settings import KafkaSettings
from shared.topics import Stream, Topics
from sla.adapters import changelog
from sla.domain.book import Book, Held, Step
from sla.domain.calendar import from_us, to_us
from sla.domain.handoff import DecisionKind, Handoff
from sla.handlers import StandardKeys, decision_event, incoming_from, status_row

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class EngineMetrics:
    """The sla service's own metrics (its /metrics, not the business metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.processed = ProcessedCounter(registry)
        self.decisions = Counter(
            "handoff_sla_decisions",
            "SLA decisions committed to Kafka, by type.",
            ["type"],
            registry=registry,
        )
        self.breach_delay = Histogram(
            "handoff_breach_detection_delay_seconds",
            "From a deadline to its missed decision being committed to Kafka.",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 30, 300),
            registry=registry,
        )
        self.transaction = Histogram(
            "handoff_sla_transaction_seconds",
            "Duration of one Kafka transaction (a batch or a timer wake-up).",
            buckets=(0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )
        self.corrupt = Counter(
            "handoff_sla_changelog_unreadable",
            "Changelog records that could not be decoded at restore (the handoff is lost).",
            registry=registry,
        )
        self.restore = Histogram(
            "handoff_sla_restore_seconds",
            "Time to rebuild one partition's state from its changelog.",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=registry,
        )


@dataclass
class Batch:
    """Everything one transaction writes."""

    records: list[tuple[str, bytes, bytes | None, Headers, int | None]] = field(
        default_factory=list
    )
    decision_types: list[str] = field(default_factory=list)
    deadlines_missed: list[int] = field(default_factory=list)
    processed: list[tuple[str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records)


class TransactionFailed(Exception):
    """A transaction did not commit: state must be rebuilt from the changelog."""


class PartitionWorker:
    """The handoffs of one input partition: state, timer and transactional producer."""

    def __init__(
        self,
        tp: TopicPartition,
        *,
        kafka: KafkaSettings,
        group: str,
        clock: Clock,
        metrics: EngineMetrics,
        retention_us: int,
        orphan_retention_us: int,
        restore_batch: int = 10_000,
    ) -> None:
        self.tp = tp
        self._kafka = kafka
        self._topics: Topics = kafka.topics
        self._group = group
        self._clock = clock
        self._metrics = metrics
        self._retention = retention_us
        self._orphan_retention = orphan_retention_us
        self._restore_batch = restore_batch
        self.book = Book(retention_us, orphan_retention_us)
        self._keys = StandardKeys()
        self._lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None
        self._timer: asyncio.Task[None] | None = None
        self._rearm = asyncio.Event()
        self._armed: int | None = None
        self.restore_seconds = 0.0
        # Records handed over by the fetch loop, processed by this worker's own pump: the
        # fetch loop never waits for a transaction, and what arrives during one is committed
        # together in the next (natural batching, no head-of-line blocking across partitions).
        self._inbox: list[ConsumerRecord[bytes, bytes]] = []
        self._next_offset: int | None = None
        self._arrived = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self.rewind: Callable[[TopicPartition], Awaitable[int]] | None = None
        self.drained: Callable[[TopicPartition], None] | None = None
        self.max_per_transaction = 1000

    @property
    def _changelog(self) -> TopicPartition:
        return TopicPartition(self._topics.name(Stream.SLA_STATE), self.tp.partition)

    @property
    def transactional_id(self) -> str:
        """One per input partition, stable across instances: the fencing key."""
        return f"{self._group}-{self.tp.topic}-{self.tp.partition}"

    async def start(self) -> None:
        """Fence any previous owner, rebuild the state, arm the timer."""
        await self._open_producer()
        await self._restore()
        self._timer = asyncio.create_task(self._run_timer(), name=f"sla-timer-{self.tp}")
        self._pump = asyncio.create_task(self._run_pump(), name=f"sla-pump-{self.tp}")

    async def stop(self) -> None:
        """Let the transaction in hand finish, then close. Records still in the inbox are
        not committed: the partition's next owner reads them again."""
        async with self._lock:
            for task in (self._timer, self._pump):
                if task is not None:
                    task.cancel()
            for task in (self._timer, self._pump):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._inbox.clear()
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await self._producer.stop()
                self._producer = None

    def offer(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> int:
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
                batch = self._inbox[: self.max_per_transaction]
                del self._inbox[: len(batch)]
                try:
                    await self.process(batch)
                except ProducerFenced:
                    return  # a newer owner has this partition; the rebalance revokes ours
                except TransactionFailed as exc:
                    log.warning("partition %s: transaction failed (%s); rebuilding", self.tp, exc)
                    self._inbox.clear()
                    await self.reset()
                    self._next_offset = await self.rewind(self.tp) if self.rewind else None
                    break
            if self.drained is not None:
                self.drained(self.tp)

    async def reset(self) -> None:
        """After a failed transaction: new producer (aborts the open transaction), state
        rebuilt from the changelog."""
        async with self._lock:
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await self._producer.stop()
            self.book = Book(self._retention, self._orphan_retention)
            delay = 0.2
            while True:
                try:
                    await self._open_producer()
                    await self._restore()
                    break
                except KafkaError as exc:
                    log.warning("partition %s: reset failed (%s); retrying", self.tp, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        self._rearm.set()

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
            **client_options(self._kafka),
        )
        await producer.start()
        self._producer = producer

    async def _restore(self) -> None:
        started = time.perf_counter()
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
            **client_options(self._kafka),
        )
        await consumer.start()
        tp = self._changelog
        count = 0
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=self._restore_batch)
                for record in batch.get(tp, ()):
                    count += 1
                    try:
                        self._restore_record(record.key or b"", record.value)
                    except Exception as exc:
                        # One unreadable record must not keep the whole partition down: the
                        # handoff is lost (its later events wait as an orphan), loudly.
                        self._metrics.corrupt.inc()
                        log.error(
                            "partition %s: changelog record %r at offset %d unreadable (%s); "
                            "skipped",
                            self.tp,
                            record.key,
                            record.offset,
                            exc,
                        )
        finally:
            await consumer.stop()
        self.book.rearm_all()
        self.restore_seconds = time.perf_counter() - started
        self._metrics.restore.observe(self.restore_seconds)
        log.info(
            "partition %s: %d handoffs restored from %d changelog records in %.2fs",
            self.tp,
            len(self.book.handoffs),
            count,
            self.restore_seconds,
        )

    def _restore_record(self, key: bytes, value: bytes | None) -> None:
        if changelog.is_standard(key):
            if value is not None:
                std_key, standard = changelog.decode_standard(key, value)
                self.book.learn(standard, std_key)
            return
        handoff_id = key.decode()
        if value is None:
            self.book.handoffs.pop(handoff_id, None)
        else:
            self.book.handoffs[handoff_id] = changelog.decode(handoff_id, value, self.book)

    # ------------------------------------------------------------------ input

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch of routed events and commit its outputs with its offsets."""
        async with self._lock:
            now = to_us(self._clock.now())
            batch = Batch()
            for record in records:
                self._apply(record, now, batch)
            offsets = {self.tp: records[-1].offset + 1}
            await self._commit(batch, offsets)
        self._maybe_rearm()

    def _apply(self, record: ConsumerRecord[bytes, bytes], now: int, batch: Batch) -> None:
        try:
            envelope = decode(record)
            incoming = incoming_from(envelope, self._keys)
        except DecodeError as exc:
            self._dead_letter(record, "invalid", str(exc), batch)
            return
        except Rejected as exc:
            self._dead_letter(record, exc.code, exc.reason, batch)
            return
        if incoming is None:
            batch.processed.append((record.topic, envelope.event_type, "ignored"))
            return
        opening = incoming.opening
        if (
            incoming.standard is not None
            and opening is not None
            and self.book.learn(incoming.standard, opening.head.standard_key)
        ):
            key, value = changelog.standard_record(incoming.standard, opening.head.standard_key)
            batch.records.append((self._changelog.topic, key, value, [], self.tp.partition))
        step = self.book.apply(incoming, now)
        if step is None:
            batch.processed.append((record.topic, envelope.event_type, "duplicate"))
            return
        batch.processed.append((record.topic, envelope.event_type, "ok"))
        self._write_step(step, now, envelope, batch)

    def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], code: str, reason: str, batch: Batch
    ) -> None:
        log.warning("dead-lettering %s@%d: %s", record.topic, record.offset, reason)
        headers = failure_headers(record, self._group, code, reason)
        dlq = self._topics.dlq(Stream.ROUTED)
        batch.records.append((dlq, record.key or b"", record.value, headers, None))
        batch.processed.append((record.topic, "unknown", "invalid"))

    def _write_step(self, step: Step, now: int, cause: Envelope | None, batch: Batch) -> None:
        decisions_topic = self._topics.name(Stream.DECISIONS)
        for decision in step.decisions:
            encoded = decision_event(
                step, decision, self.book, now, cause.event_id if cause else None
            )
            batch.records.append(
                (decisions_topic, encoded.key, encoded.value, encoded.headers, None)
            )
            batch.decision_types.append(encoded.event_type)
            if decision.kind is DecisionKind.MISSED:
                batch.deadlines_missed.append(decision.at)
        key, status = status_row(step, self.book)
        batch.records.append((self._topics.name(Stream.STATUS), key, status, [], None))
        value = None if step.forgotten else changelog.encode(step.handoff)
        batch.records.append((self._changelog.topic, key, value, [], self.tp.partition))

    async def _commit(self, batch: Batch, offsets: dict[TopicPartition, int] | None) -> None:
        producer = self._producer
        if producer is None:
            raise TransactionFailed("no producer")
        started = time.perf_counter()
        try:
            async with producer.transaction():
                for topic, key, value, headers, partition in batch.records:
                    await producer.send(topic, value, key=key, headers=headers, partition=partition)
                if offsets:
                    await producer.send_offsets_to_transaction(offsets, self._group)
        except ProducerFenced:
            log.error("partition %s: fenced by a newer owner; giving it up", self.tp)
            raise
        except Exception as exc:
            raise TransactionFailed(f"{type(exc).__name__}: {exc}") from exc
        committed = self._clock.now()
        self._metrics.transaction.observe(time.perf_counter() - started)
        for kind in batch.decision_types:
            self._metrics.decisions.labels(kind).inc()
        for deadline in batch.deadlines_missed:
            delay = (committed - from_us(deadline)).total_seconds()
            self._metrics.breach_delay.observe(max(delay, 0.0))
        for topic, event_type, result in batch.processed:
            self._metrics.processed.inc(topic, event_type, result)

    # ------------------------------------------------------------------ timer

    def _maybe_rearm(self) -> None:
        wake = self.book.next_wake()
        if wake is not None and (self._armed is None or wake < self._armed):
            self._rearm.set()

    async def _run_timer(self) -> None:
        while True:
            wake = self.book.next_wake()
            self._armed = wake
            self._rearm.clear()
            waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._rearm.wait())]
            if wake is not None:
                waiters.append(asyncio.create_task(self._clock.sleep_until(from_us(wake))))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waiters:
                    task.cancel()
            if self._rearm.is_set():
                continue
            try:
                await self.fire()
            except TransactionFailed as exc:
                log.warning("partition %s: timer transaction failed (%s)", self.tp, exc)
                await self.reset()

    async def fire(self) -> None:
        """Decide everything that is due now (missed deadlines, warnings, forgetting)."""
        async with self._lock:
            now = to_us(self._clock.now())
            while True:
                steps = self.book.due(now, limit=2000)
                if not steps:
                    return
                batch = Batch()
                for step in steps:
                    self._write_step(step, now, None, batch)
                await self._commit(batch, None)

    # ------------------------------------------------------------------ queries

    def handoffs(self) -> Iterable[Handoff]:
        """The handoffs this worker holds."""
        return self.book.handoffs.values()


class SlaEngine:
    """The consumer group member: assigns partitions to workers and feeds them records."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        clock: Clock,
        registry: CollectorRegistry,
        group: str = "sla",
        retention_us: int,
        orphan_retention_us: int,
        max_records: int = 200,
        max_backlog: int = 5000,
    ) -> None:
        self._kafka = kafka
        self._clock = clock
        self._group = group
        self._retention = retention_us
        self._orphan_retention = orphan_retention_us
        self._max_records = max_records
        self._max_backlog = max_backlog
        self.metrics = EngineMetrics(registry)
        self.workers: dict[TopicPartition, PartitionWorker] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.joined = asyncio.Event()
        registry.register(_StateCollector(self))

    @property
    def ready(self) -> bool:
        """Joined the group and every assigned partition has a running worker."""
        consumer = self._consumer
        if not self.joined.is_set() or consumer is None:
            return False
        return all(tp in self.workers for tp in consumer.assignment())

    async def start(self) -> None:
        """Join the group in the background."""
        self._task = asyncio.create_task(self._run(), name="sla-engine")

    async def stop(self) -> None:
        """Stop consuming, let workers finish their transaction, leave the group."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        self.workers.clear()
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    def _created(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer  # the rebalance listener pauses partitions through it

    async def _run(self) -> None:
        topic = self._kafka.topics.name(Stream.ROUTED)
        self._consumer = await start_group_consumer(
            self._kafka, [topic], self._group, _Rebalance(self), self._max_records, self._created
        )
        while not self._stopping:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=self._max_records)
            for tp, records in batches.items():
                self._hand_over(tp, records)

    def _hand_over(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        consumer = self._consumer
        assert consumer is not None
        if not records:
            return
        worker = self.workers.get(tp)
        if worker is None:
            # Fetched before its worker was ready (or after it left): never drop records --
            # rewind so they are fetched again once a worker owns the partition.
            if tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
            return
        if worker.offer(records) > self._max_backlog and tp in consumer.assignment():
            consumer.pause(tp)  # backpressure: resumed when the worker has drained its inbox

    def _drained(self, tp: TopicPartition) -> None:
        consumer = self._consumer
        if consumer is not None and tp in consumer.assignment() and tp in consumer.paused():
            consumer.resume(tp)

    async def _rewind(self, tp: TopicPartition) -> int:
        """Seek a partition back to its committed offset (after a failed transaction)."""
        assert self._consumer is not None
        committed = await self._consumer.committed(tp) or 0
        if tp in self._consumer.assignment():
            self._consumer.seek(tp, committed)
        return committed

    async def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Start a worker (fence, restore) for each newly assigned partition."""
        new = [tp for tp in partitions if tp not in self.workers]
        # No record of a partition may be handed out before its state is restored.
        if self._consumer is not None and new:
            self._consumer.pause(*new)
        workers = [
            PartitionWorker(
                tp,
                kafka=self._kafka,
                group=self._group,
                clock=self._clock,
                metrics=self.metrics,
                retention_us=self._retention,
                orphan_retention_us=self._orphan_retention,
            )
            for tp in new
        ]
        await asyncio.gather(*(self._start_worker(w) for w in workers))
        for worker in workers:
            worker.rewind = self._rewind
            worker.drained = self._drained
            self.workers[worker.tp] = worker
        if self._consumer is not None and new:
            self._consumer.resume(*new)
        self.joined.set()

    async def _start_worker(self, worker: PartitionWorker) -> None:
        # Kafka may be briefly unreachable during a rebalance: retry rather than leave the
        # partition without an owner (readiness stays false meanwhile).
        delay = 0.5
        while True:
            try:
                await worker.start()
                return
            except KafkaError as exc:
                log.warning("partition %s: start failed (%s); retrying", worker.tp, exc)
                await worker.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop the workers of partitions moving to another member."""
        gone = [self.workers.pop(tp) for tp in partitions if tp in self.workers]
        await asyncio.gather(*(w.stop() for w in gone))

    def find(self, handoff_id: str) -> tuple[PartitionWorker, Handoff] | None:
        """The worker holding a handoff, and the handoff."""
        for worker in self.workers.values():
            handoff = worker.book.handoffs.get(handoff_id)
            if handoff is not None:
                return worker, handoff
        return None

    def held(self, now: int, keep: Callable[[Handoff], bool] | None = None) -> Iterator[Held]:
        """Every handoff this instance holds (that `keep` lets through -- a cheap check made
        before the costlier evaluation) with its clocks as of `now`."""
        for worker in list(self.workers.values()):
            for handoff in list(worker.handoffs()):
                if handoff.head is None or (keep is not None and not keep(handoff)):
                    continue
                held = worker.book.held(handoff, now)
                if held is not None:
                    yield held


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: SlaEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._engine.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._engine.assigned(assigned)


class _StateCollector(Collector):
    """`handoff_sla_handoffs{partition}`: handoffs held in memory, read at scrape time."""

    def __init__(self, engine: SlaEngine) -> None:
        self._engine = engine

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "handoff_sla_handoffs",
            "Handoffs the sla instance holds in memory (open, and closed within retention).",
            labels=["partition"],
        )
        for tp, worker in list(self._engine.workers.items()):
            family.add_metric([str(tp.partition)], len(worker.book))
        yield family
