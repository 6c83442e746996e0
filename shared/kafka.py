"""Kafka plumbing, written once: topic creation, the idempotent publisher, the consumer loop.

Delivery semantics:
- `Publisher`: idempotent producer, acks=all, every message keyed (the handoff id), so one
  partition keeps a handoff's order. `publish` returns only after the broker acknowledged, or
  raises KafkaUnavailable within its timeout: at once while the `BrokerWatch` says the cluster
  is unreachable. A timed-out request may still be written later by the producer's retries;
  its events keep their ids, so the client's retry is de-duplicated downstream.
- `BrokerWatch`: one probe per service of whether the cluster answers (a metadata request
  every second); readiness and the fast 503 follow it, and it logs a line when the state
  changes plus a summary while the outage lasts -- never a line per retry.
- `ConsumerLoop`: at-least-once. decode -> de-duplicate by event_id -> handle -> publish the
  handler's output and wait for its acks -> commit `{tp: offset + 1}` for that partition.
  Each record is handled with its ids (handoff, case, event, request) on every log line and
  inside its trace; what it causes carries its `traceparent` and `x-request-id` headers on.
  Never auto-commit; a poison record is committed only after its dead-letter copy (original
  bytes + failure headers) is acknowledged; a cancelled batch is never committed.
- `PositionedLog`: no group, no Kafka commits; reads from positions its caller stores with
  what it derives (one transaction), so a restart resumes exactly: effectively exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)
from aiokafka.helpers import create_ssl_context
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import ValidationError

from shared.events import Envelope, UnknownEventType, ce_headers
from shared.partitioner import partition_for
from shared.retry import retrying
from shared.settings import KafkaSettings
from shared.topics import TopicSpec
from shared.tracing import consuming, kafka_headers

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or did not acknowledge in time."""


class Rejected(Exception):
    """A handler's verdict that an event can never be processed: it goes to the DLQ."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class BrokerWatch:
    """Whether the cluster answers, probed with a metadata request every `interval` seconds.

    `connected` is what readiness reports and what makes a publish fail fast. The watch logs
    once when the cluster goes away and once when it is back (with the outage's length), and
    every `summary_every` seconds while it stays away.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        name: str,
        *,
        interval: float = 1.0,
        probe_timeout: float = 2.0,
        summary_every: float = 60.0,
    ) -> None:
        self._kafka = kafka
        self._name = name
        self._interval = interval
        self._probe_timeout = probe_timeout
        self._summary_every = summary_every
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.connected = False
        self.changed_at: float | None = None
        self.last_error = "not probed yet"

    async def start(self) -> None:
        """Start probing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self._name}-broker-watch")

    async def stop(self) -> None:
        """Stop probing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def suspect(self) -> None:
        """Probe now (a send just timed out)."""
        self._wake.set()

    async def _probe(self, client: AIOKafkaClient | None) -> AIOKafkaClient:
        if client is None:
            client = AIOKafkaClient(**client_options(self._kafka))
            try:
                async with asyncio.timeout(self._probe_timeout):
                    await client.bootstrap()
            except BaseException:
                with contextlib.suppress(Exception):
                    await client.close()
                raise
            return client
        async with asyncio.timeout(self._probe_timeout):
            await client.fetch_all_metadata()
        return client

    def _set(self, connected: bool, loop_time: float) -> None:
        if connected == self.connected and self.changed_at is not None:
            return
        if connected:
            if self.changed_at is None:
                log.info("%s: Kafka %s reachable", self._name, self._kafka.bootstrap_servers)
            else:
                log.warning(
                    "%s: Kafka reachable again after %.1f s",
                    self._name,
                    loop_time - self.changed_at,
                )
        else:
            log.warning(
                "%s: Kafka %s unreachable (%s); not ready, writes answer 503 until it is back",
                self._name,
                self._kafka.bootstrap_servers,
                self.last_error,
            )
        self.connected = connected
        self.changed_at = loop_time

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        client: AIOKafkaClient | None = None
        last_summary = loop.time()
        try:
            while True:
                try:
                    client = await self._probe(client)
                    self._set(True, loop.time())
                except (KafkaError, OSError, TimeoutError) as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    self._set(False, loop.time())
                    now = loop.time()
                    if now - last_summary >= self._summary_every and self.changed_at is not None:
                        last_summary = now
                        log.warning(
                            "%s: Kafka still unreachable after %.0f s (%s)",
                            self._name,
                            now - self.changed_at,
                            self.last_error,
                        )
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options for aiokafka clients, security (SSL/SASL) included."""
    opts: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        context: ssl.SSLContext = create_ssl_context(
            cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile
        )
        opts["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL"):
        opts["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        opts["sasl_plain_username"] = kafka.sasl_username
        opts["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return opts


async def ensure_topics(kafka: KafkaSettings, specs: Iterable[TopicSpec] | None = None) -> None:
    """Create every topic of the registry that does not exist yet (idempotent), with the
    partitions, replication factor and configs of its spec (`kafka.topics.specs()`: the
    replication factor and `min.insync.replicas` of the settings). An existing topic is left
    as it is, even if its replication differs."""
    wanted = list(specs if specs is not None else kafka.topics.specs())
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.configs)
            for s in wanted
            if s.name not in existing
        ]
        if new:
            # Created concurrently by another service: fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            log.info("created topics %s", [t.name for t in new])
            await _until_led(admin, {s.name: s.partitions for s in wanted})
    finally:
        await admin.close()


async def _until_led(
    admin: AIOKafkaAdminClient, wanted: dict[str, int], within: float = 30.0
) -> None:
    """Wait until every topic shows all its partitions with a leader: creation returns before
    the metadata has spread, and a client arriving in between would see no partitions."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        described = await admin.describe_topics(list(wanted))
        ready = {
            d["topic"]
            for d in described
            if d.get("error_code", 0) == 0
            and len(d["partitions"]) == wanted.get(d["topic"], -1)
            and all(p["leader"] >= 0 for p in d["partitions"])
        }
        if ready >= set(wanted):
            return
        if loop.time() > deadline:
            raise KafkaUnavailable(f"topics not ready after {within}s: {set(wanted) - ready}")
        await asyncio.sleep(0.1)


def headers_of(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Mirror id, type and version into Kafka headers (CloudEvents Kafka binding names)."""
    return ce_headers(
        envelope.event_id, envelope.event_type, envelope.producer, envelope.schema_version
    )


_WHOLE_BATCH = 16
"""From this many records for one partition in one write, they are sent as one batch."""

Headers = list[tuple[str, bytes]]
Record = tuple[str, bytes | None, bytes, Headers, int | None]
"""An encoded record to send: (topic, value or None for a tombstone, key, headers, partition
or None)."""


@dataclass(frozen=True)
class Outbound:
    """A message a handler wants published: the envelope goes to `topic`, keyed by its key,
    on `partition`, or where Kafka's partitioner puts `partition_key` (default: the key) --
    records of one entity under several keys (an outbox) stay on that entity's partition;
    `headers` beyond the envelope's own (the ConsumerLoop adds the trace and request id of
    the record that caused it)."""

    topic: str
    envelope: Envelope
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition_key: bytes | None = None


@dataclass(frozen=True)
class TableRow:
    """A row of a compacted table (a service's changelog) a handler wants written: `value`
    None is a tombstone (the key is forgotten)."""

    topic: str
    key: bytes
    value: bytes | None
    partition: int | None = None


Output = Outbound | TableRow
"""What a handler hands back for publishing before its input is committed."""


class Publisher:
    """The idempotent producer (acks=all). It keeps trying to connect in the background, so a
    service starts even while the broker is down and answers 503 until it is up.

    With a `watch`, a publish fails at once while the cluster is unreachable; with a `timeout`
    (seconds), a publish that is not acknowledged in time raises KafkaUnavailable.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        client_id: str,
        *,
        watch: BrokerWatch | None = None,
        timeout: float | None = None,
        **producer_options: Any,
    ) -> None:
        self._kafka = kafka
        self._client_id = client_id
        # Whole record batches are handed to the producer (see write): let one hold a request.
        self._options = {"linger_ms": 0, "max_batch_size": 262144, **producer_options}
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.watch = watch
        self.timeout = timeout

    @property
    def ready(self) -> bool:
        """True once connected to the cluster (and, with a watch, while it answers)."""
        return self._started.is_set() and (self.watch is None or self.watch.connected)

    async def start(self, wait: bool = False) -> None:
        """Begin connecting; with `wait`, return only once connected."""
        if self._connector is None:
            self._connector = asyncio.create_task(self._connect(), name=f"{self._client_id}-pub")
        if wait:
            await self._started.wait()

    async def _connect(self) -> None:
        async def attempt() -> AIOKafkaProducer:
            producer = AIOKafkaProducer(
                client_id=self._client_id,
                enable_idempotence=True,
                acks="all",
                **client_options(self._kafka),
                **self._options,
            )
            try:
                await producer.start()
            except KafkaError:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            return producer

        self._producer = await retrying(attempt, on=(KafkaError,), what="connecting to kafka")
        self._started.set()

    async def stop(self) -> None:
        """Flush what is buffered and close."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            await self._producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise KafkaUnavailable("not connected to Kafka yet")
        return self._producer

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes,
        headers: list[tuple[str, bytes]],
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record; returns the future of its acknowledgement. A keyed record goes
        where Kafka's default partitioner puts it (computed here, faster than aiokafka)."""
        producer = self._require()
        if partition is None and key:
            known = producer.client.cluster.partitions_for_topic(topic)
            if known:
                partition = partition_for(key, len(known))
        try:
            fut: asyncio.Future[Any] = await producer.send(
                topic, value, key=key, headers=headers, partition=partition
            )
        except (KafkaError, IllegalStateError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc
        return fut

    async def publish_many(self, messages: Sequence[Output]) -> None:
        """Send every message without waiting in between, then wait for all acknowledgements."""
        records: list[Record] = []
        for m in messages:
            if isinstance(m, TableRow):
                records.append((m.topic, m.value, m.key, [], m.partition))
                continue
            partition = m.partition
            if partition is None and m.partition_key is not None:
                partition = partition_for(m.partition_key, await self._partitions(m.topic))
            key = m.envelope.key.encode()
            headers = headers_of(m.envelope)
            if m.headers:
                headers = [*headers, *m.headers]
            records.append((m.topic, m.envelope.to_bytes(), key, headers, partition))
        await self.write(records)

    async def _partitions(self, topic: str) -> int:
        """The partition count of `topic` (waits for its metadata on first use)."""
        try:
            known = await self._require().partitions_for(topic)
        except (KafkaError, IllegalStateError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc
        return len(known)

    async def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (KafkaUnavailable until the broker says)."""
        await self.start(wait=True)
        return await self._partitions(topic)

    async def write(self, records: Sequence[Record]) -> None:
        """Send encoded records (topic, value, key, headers, partition), then wait for every
        acknowledgement -- within `timeout`, and not at all while the watch says the cluster
        is unreachable (KafkaUnavailable either way).

        Many records for one partition are handed to the producer as whole record batches
        (one future per batch, not per record): the same bytes on the wire as sending them
        one by one, a fraction of the client-side cost. Order within a partition is kept.
        """
        if not records:
            return
        if self.watch is not None and not self.watch.connected:
            raise KafkaUnavailable(f"Kafka unreachable ({self.watch.last_error})")
        # A timer of the loop's own, not asyncio.timeout: a third of the cost on the hot path.
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = (
            asyncio.get_running_loop().call_later(self.timeout, expire)
            if self.timeout is not None
            else None
        )
        try:
            await wait_acks(await self._enqueue(records))
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            if self.watch is not None:
                self.watch.suspect()
            raise KafkaUnavailable(f"Kafka did not acknowledge within {self.timeout:g} s") from None
        finally:
            if timer is not None:
                timer.cancel()

    async def _enqueue(self, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
        producer = self._require()
        cluster = producer.client.cluster
        counts: dict[str, int] = {}
        groups: dict[tuple[str, int], list[tuple[bytes | None, bytes, Headers]]] = {}
        futures: list[asyncio.Future[Any]] = []
        for topic, value, key, headers, partition in records:
            if partition is None and key:
                count = counts.get(topic)
                if count is None:
                    known = cluster.partitions_for_topic(topic)
                    count = counts[topic] = len(known) if known else 0
                if count:
                    partition = partition_for(key, count)
            if partition is None:  # metadata not known yet: the producer waits for it
                futures.append(
                    await self.send(topic, value, key=key, headers=headers, partition=None)
                )
                continue
            groups.setdefault((topic, partition), []).append((value, key, headers))
        try:
            for (topic, partition), items in groups.items():
                if len(items) < _WHOLE_BATCH:
                    # Few records: they join the producer's open batch for the partition,
                    # shared with concurrent requests (a batch of one's own would wait for
                    # the previous one to be sent).
                    for value, key, headers in items:
                        futures.append(
                            await self.send(
                                topic, value, key=key, headers=headers, partition=partition
                            )
                        )
                    continue
                batch = producer.create_batch()
                for value, key, headers in items:
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None, headers=headers)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        except (KafkaError, IllegalStateError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc
        return futures

    async def publish(self, topic: str, envelope: Envelope) -> None:
        """Publish one envelope and wait for the broker's acknowledgement."""
        await self.publish_many([Outbound(topic, envelope)])


async def wait_acks(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Wait for every acknowledgement; any failure becomes KafkaUnavailable.

    Awaited one after the other rather than gathered: acknowledgements come in together, and
    a done future costs nothing to await (gather wraps each in a task callback)."""
    for index, future in enumerate(futures):
        try:
            await future
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            for rest in futures[index + 1 :]:  # retrieve their outcome: no "never retrieved"
                rest.add_done_callback(_consume)
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# --------------------------------------------------------------------------- consuming


class DecodeError(Exception):
    """A record that is not a valid envelope: poison, it goes to the DLQ."""


def decode(record: ConsumerRecord[bytes, bytes]) -> Envelope:
    """Decode a record's value into an envelope, or raise DecodeError naming the problem."""
    if record.value is None:
        raise DecodeError("empty value")
    try:
        return Envelope.from_bytes(record.value)
    except (ValidationError, UnknownEventType, ValueError) as exc:
        raise DecodeError(str(exc)[:500]) from exc


def failure_headers(
    record: ConsumerRecord[bytes, bytes], group: str, code: str, reason: str
) -> list[tuple[str, bytes]]:
    """What a dead letter carries besides the original bytes and headers."""
    return [
        *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")],
        *dead_letter_headers(record.topic, record.partition, record.offset, group, code, reason),
    ]


def dead_letter_headers(
    topic: str, partition: int, offset: int, group: str, code: str, reason: str
) -> list[tuple[str, bytes]]:
    """The `dlq.*` headers of a dead letter: why, and where the event was read from."""
    return [
        ("dlq.code", code.encode()),
        ("dlq.reason", reason[:1000].encode()),
        ("dlq.topic", topic.encode()),
        ("dlq.partition", str(partition).encode()),
        ("dlq.offset", str(offset).encode()),
        ("dlq.consumer_group", group.encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
    ]


class EventIdWindow:
    """The event ids seen most recently (bounded), each with the digest of what it carried:
    de-duplicates redeliveries and retries, and tells them from an id reused for another event
    (same id, other digest) -- which must be refused, not silently dropped as a duplicate."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, str | None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def reused(self, event_id: str, digest: str | None) -> bool:
        """True when `event_id` was seen with another digest (both known)."""
        seen = self._ids.get(event_id)
        return seen is not None and digest is not None and seen != digest

    def add(self, event_id: str, digest: str | None = None) -> None:
        """Remember an id, forgetting the oldest beyond the bound."""
        self._ids[event_id] = digest
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


Source = tuple[str, int]
"""(topic, partition) a record came from: aiokafka's TopicPartition is such a tuple."""
Handler = Callable[[Envelope, Source], Awaitable[Sequence[Output]]]
"""The service layer's entry: one decoded event and the partition it came from."""


class ProcessedCounter:
    """`handoff_events_processed_total{topic, event_type, result}` for one service."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "handoff_events_processed",
            "Events consumed, by outcome: ok, duplicate, invalid (dead-lettered), error.",
            ["topic", "event_type", "result"],
            registry=registry,
        )

    def inc(self, topic: str, event_type: str, result: str) -> None:
        """Count one processed event."""
        self.counter.labels(topic, event_type, result).inc()


class GroupLoop:
    """One consumer-group member consuming in a background task: what every loop shares.

    A subclass says what comes before joining the group (`_prepare`), what one fetch does
    (`_process`, run under the batch lock: a rebalance and a stop wait for the batch in hand)
    and what else it closes (`_close`). Lag counts from what the loop has finished, per
    assigned partition.
    """

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        dlq_topic: Callable[[str], str],
        processed: ProcessedCounter,
        known_event_types: frozenset[str],
        dedup_window: int,
        max_records: int,
    ) -> None:
        self._kafka = kafka
        self._topics = list(topics)
        self._group = group_id
        self._dlq_topic = dlq_topic
        self._processed = processed
        self._known_types = known_event_types
        self._seen = EventIdWindow(dedup_window)
        self._max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._batch_lock = asyncio.Lock()
        self._positions: dict[TopicPartition, int] = {}
        self.joined = asyncio.Event()

    @property
    def running(self) -> bool:
        """True while the consuming task is alive (False before start, after a crash, or once
        a transactional loop is fenced by a newer owner of its id)."""
        return self._task is not None and not self._task.done()

    def lag(self) -> Iterable[tuple[TopicPartition, int]]:
        """Records between what this loop finished and each assigned partition's end."""
        if self._consumer is None:
            return
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            position = self._positions.get(tp)
            if high is not None and position is not None:
                yield tp, max(high - position, 0)

    async def start(self) -> None:
        """Start consuming in a background task (connects with retries)."""
        self._task = asyncio.create_task(self._run(), name=f"{self._group}-consumer")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("consumer %s stopped: %r", self._group, task.exception())

    async def stop(self) -> None:
        """Let the batch in hand finish, then close the consumer (and what `_close` holds)."""
        self._stopping = True
        if self._task is not None:
            try:
                async with asyncio.timeout(10):
                    async with self._batch_lock:
                        self._task.cancel()
            except TimeoutError:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        await self._close()

    async def _prepare(self) -> None:
        """What must be up before the member joins the group."""

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        raise NotImplementedError

    def _partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        """A rebalance takes these partitions (the batch in hand is finished)."""

    async def _close(self) -> None:
        """Close what the subclass holds besides the consumer."""

    async def _run(self) -> None:
        await self._prepare()
        self._consumer = await start_group_consumer(
            self._kafka, self._topics, self._group, _Listener(self), self._max_records
        )
        while not self._stopping:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
            if not batches:
                await self._advance_positions()
                continue
            async with self._batch_lock:
                await self._process(batches)

    async def _advance_positions(self) -> None:
        # After a transaction the position moves past its commit marker, which is no record:
        # without this, lag on transactional topics would stay at 1 forever.
        assert self._consumer is not None
        for tp in self._consumer.assignment():
            if tp in self._positions:
                with contextlib.suppress(KafkaError, IllegalStateError):
                    position = await self._consumer.position(tp)
                    self._positions[tp] = max(self._positions[tp], position)

    def _event_type(self, envelope: Envelope) -> str:
        """The type label of an event's counts (types this service does not know: "other")."""
        return envelope.event_type if envelope.event_type in self._known_types else "other"


def reused_id(event_id: str, key: str) -> str:
    """The dead-letter reason of an event id used again for another event."""
    return (
        f"event id {event_id!r} was already used for another event (other content or another "
        f"handoff than {key!r}); give each event its own id"
    )


def record_context(
    record: ConsumerRecord[bytes, bytes], envelope: Envelope | None
) -> contextlib.AbstractContextManager[None]:
    """The record's ids, and the request id and trace it carries, on every line logged while
    it is handled (only its key when it could not be decoded)."""
    headers = record.headers or ()
    if envelope is None:
        key = (record.key or b"").decode(errors="replace")
        return consuming(headers, record.topic, handoff_id=key)
    return consuming(
        headers,
        record.topic,
        handoff_id=envelope.key,
        case_id=envelope.correlation_id,
        event_id=envelope.event_id,
    )


class ConsumerLoop(GroupLoop):
    """decode -> de-duplicate -> handle -> publish outputs -> commit, per fetch (at least once)."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        publisher: Publisher,
        dlq_topic: Callable[[str], str],
        processed: ProcessedCounter,
        known_event_types: frozenset[str],
        dedup_window: int = 200_000,
        max_attempts: int = 3,
        max_records: int = 500,
        revoked: Callable[[Iterable[TopicPartition]], None] | None = None,
    ) -> None:
        super().__init__(
            kafka=kafka,
            topics=topics,
            group_id=group_id,
            dlq_topic=dlq_topic,
            processed=processed,
            known_event_types=known_event_types,
            dedup_window=dedup_window,
            max_records=max_records,
        )
        self._handler = handler
        self._publisher = publisher
        self._max_attempts = max_attempts
        self._revoked = revoked

    async def _prepare(self) -> None:
        await self._publisher.start(wait=True)

    def _partitions_revoked(self, partitions: Iterable[TopicPartition]) -> None:
        if self._revoked is not None:
            self._revoked(partitions)

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        outbound: list[Output] = []
        accepted: dict[TopicPartition, list[str]] = {}
        for tp, records in batches.items():
            types = accepted.setdefault(tp, [])
            for record in records:
                out = await self._process_record(record)
                if out is not None:
                    outbound.extend(out[0])
                    types.append(out[1][1])
        # Publish every output of the fetch and wait for the acks *before* committing: a crash
        # in between replays the fetch (at-least-once) instead of losing its outputs. One
        # publish and one commit per fetch, not per partition: two round trips, whatever the
        # number of partitions.
        await retrying(
            lambda: self._publisher.publish_many(outbound),
            on=(KafkaUnavailable,),
            what="publishing the batch's outputs",
        )
        for tp, types in accepted.items():
            for event_type in types:
                self._processed.inc(tp.topic, event_type, "ok")
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
        await self._commit(offsets)
        self._positions.update(offsets)

    async def _process_record(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> tuple[Sequence[Output], tuple[str, str]] | None:
        try:
            envelope = decode(record)
        except DecodeError as exc:
            with record_context(record, None):
                await self._dead_letter(record, "invalid", str(exc))
            return None
        with record_context(record, envelope):
            return await self._handle_record(record, envelope)

    async def _handle_record(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope
    ) -> tuple[Sequence[Output], tuple[str, str]] | None:
        event_type = self._event_type(envelope)
        if envelope.event_id in self._seen:
            if self._seen.reused(envelope.event_id, envelope.digest):
                reason = reused_id(envelope.event_id, envelope.key)
                await self._dead_letter(record, "event-id-reused", reason, event_type)
                return None
            self._processed.inc(record.topic, event_type, "duplicate")
            return None
        for attempt in range(1, self._max_attempts + 1):
            try:
                out = await self._handler(envelope, (record.topic, record.partition))
                # Seen from now on, so a duplicate later in the same batch is caught too.
                self._seen.add(envelope.event_id, envelope.digest)
                if out:
                    # What this record causes carries its trace and request id on.
                    carried = tuple(kafka_headers())
                    if carried:
                        out = [
                            replace(o, headers=o.headers + carried)
                            if isinstance(o, Outbound)
                            else o
                            for o in out
                        ]
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s handled: %d records to write", envelope.event_type, len(out))
                return out, (envelope.event_id, event_type)
            except Rejected as exc:
                await self._dead_letter(record, exc.code, exc.reason, event_type)
                return None
            except Exception as exc:  # a handler bug or a transient failure: retry, then DLQ
                log.exception("handler failed on %s (attempt %d)", envelope.event_id, attempt)
                if attempt == self._max_attempts:
                    await self._dead_letter(record, "error", repr(exc), event_type, "error")
                    return None
                await asyncio.sleep(0.1 * attempt)
        return None

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        code: str,
        reason: str,
        event_type: str = "unknown",
        result: str = "invalid",
    ) -> None:
        log.warning(
            "dead-lettering %s@%d/%d: %s", record.topic, record.partition, record.offset, reason
        )

        async def attempt() -> None:
            fut = await self._publisher.send(
                self._dlq_topic(record.topic),
                record.value or b"",
                key=record.key or b"",
                headers=failure_headers(record, self._group, code, reason),
            )
            await wait_acks([fut])

        await retrying(attempt, on=(KafkaUnavailable,), what="writing a dead letter")
        self._processed.inc(record.topic, event_type, result)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaConnectionError) as exc:
            # A partition moved to another member mid-batch: it will replay from the last
            # commit there, and the de-duplication downstream absorbs the repeat.
            log.warning("commit of %s failed (%s); the new owner replays", list(offsets), exc)
            return


async def start_group_consumer(
    kafka: KafkaSettings,
    topics: Sequence[str],
    group: str,
    listener: ConsumerRebalanceListener,
    max_records: int,
    created: Callable[[AIOKafkaConsumer], None] | None = None,
    **consumer_options: Any,
) -> AIOKafkaConsumer:
    """A started group member (manual commits, read_committed), retrying until Kafka answers.

    `created` sees the consumer before it starts: a rebalance listener may run during start.
    """

    async def attempt() -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            group_id=group,
            client_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_records,
            **client_options(kafka),
            **consumer_options,
        )
        consumer.subscribe(list(topics), listener=listener)
        if created is not None:
            created(consumer)
        try:
            await consumer.start()
        except KafkaError:
            await close_consumer(consumer)
            raise
        return consumer

    return await retrying(attempt, on=(KafkaError,), what=f"consumer {group} joining")


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """A rebalance waits for the batch in hand (committed or written in its transaction)."""

    def __init__(self, loop: GroupLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._loop._batch_lock:
            self._loop._partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._loop.joined.set()


TableCallback = Callable[[bytes, bytes | None], None]


async def close_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer whatever state it is in.

    aiokafka's group-less coordinator re-raises the cancellation of its own helper task when
    stopped right after start: that CancelledError is not ours and is swallowed, unless this
    task is itself being cancelled.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception as exc:
        log.debug("closing a consumer failed: %r", exc)


class TableReader:
    """Materialises compacted topics: reads every partition from the beginning, then follows.

    Delivery semantics: no consumer group and no commits -- a restart reads the table again
    from the start (read_committed), so the view is rebuilt from Kafka, never drifts, and
    counts nothing twice. `callback(key, value)` gets None for a tombstone. `caught_up` is set
    once the end offsets seen at start-up have been read.
    """

    def __init__(self, kafka: KafkaSettings, topics: Sequence[str], callback: TableCallback):
        self._kafka = kafka
        self._topics = list(topics)
        self._callback = callback
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Caught up with the table and still following it."""
        return self.caught_up.is_set() and self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start reading in the background."""
        self._task = asyncio.create_task(self._run(), name=f"table-{self._topics[0]}")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await close_consumer(self._consumer)

    def _deliver(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self._callback(record.key or b"", record.value)

    async def _connect(self) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        async def attempt() -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
            # Subscribed without a group: start() loads the topics' metadata and every
            # partition is assigned from the beginning (a bare assign() would not know the
            # partitions right after start on Kafka 4.x).
            consumer = AIOKafkaConsumer(
                *self._topics,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                **client_options(self._kafka),
            )
            try:
                await consumer.start()
                partitions = [
                    TopicPartition(t, p)
                    for t in self._topics
                    for p in sorted(consumer.partitions_for_topic(t) or ())
                ]
                if len({tp.topic for tp in partitions}) < len(self._topics):
                    raise KafkaConnectionError("table topics not found yet")
            except KafkaError:
                await close_consumer(consumer)
                raise
            return consumer, partitions

        return await retrying(attempt, on=(KafkaError,), what=f"table {self._topics}")

    async def _run(self) -> None:
        consumer, partitions = await self._connect()
        self._consumer = consumer
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        pending = {tp for tp, end in ends.items() if end > 0}
        while True:
            if not pending and not self.caught_up.is_set():
                self.caught_up.set()
                log.info("table %s caught up", self._topics)
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                for record in records:
                    self._deliver(record)
            # Position, not the last offset seen: transaction markers can sit at the end.
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)


@dataclass(frozen=True, slots=True)
class Received:
    """A record as a follower hands it on (no aiokafka type leaves shared)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class LogFollower(TableReader):
    """Like TableReader, for topics read as logs: every record, with its position and headers.

    Delivery semantics: no group, no commits; every start reads the topics again from the
    beginning of their retention, so what is derived from them is rebuilt, never drifts.
    """

    def __init__(
        self, kafka: KafkaSettings, topics: Sequence[str], on_record: Callable[[Received], None]
    ) -> None:
        super().__init__(kafka, topics, lambda _key, _value: None)
        self._on_record = on_record

    def _deliver(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self._on_record(
            Received(
                record.topic,
                record.partition,
                record.offset,
                record.timestamp,
                record.key or b"",
                record.value or b"",
                tuple(record.headers or ()),
            )
        )


Positions = Mapping[tuple[str, int], int]
"""(topic, partition) -> the next offset to read."""


class PositionedLog(TableReader):
    """Topics read as logs from positions the caller keeps, handed over batch by batch.

    Delivery semantics: no group and no Kafka commits. Each partition starts at
    `positions()[(topic, partition)]` -- the next offset to read, as the caller stored it -- or
    at its beginning; `on_batch(records)` is awaited before the next fetch and must store what
    the records change *and* their positions (offset + 1) in one transaction, so a restart
    resumes exactly where the caller's store stands: nothing lost, nothing twice. A stored
    position below a partition's first offset (retention deleted records never read) is logged
    and counted in `gaps`, and reading starts at the first offset still there.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        positions: Callable[[], Positions],
        on_batch: Callable[[list[Received]], Awaitable[None]],
        *,
        max_records: int = 2000,
    ) -> None:
        super().__init__(kafka, topics, lambda _key, _value: None)
        self._positions = positions
        self._on_batch = on_batch
        self._max_records = max_records
        self.gaps = 0
        """Partitions whose stored position had fallen out of the topic's retention."""
        self._lags: dict[tuple[str, int], int] = {}
        self._batch = asyncio.Lock()

    @property
    def running(self) -> bool:
        """True while the reading task is alive (False before start and after a failure)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Let the batch in hand be stored, then stop reading."""
        try:
            async with asyncio.timeout(30):
                await self._batch.acquire()
        except TimeoutError:
            log.warning(
                "%s: a batch was still being stored after 30 s; stopping anyway", self._topics
            )
        try:
            await super().stop()
        finally:
            if self._batch.locked():
                self._batch.release()

    async def _seek(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        stored = self._positions()
        firsts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        for tp in partitions:
            at = stored.get((tp.topic, tp.partition))
            if at is not None and at > ends[tp]:
                log.error(
                    "%s[%d]: stored position %d is past the partition's end %d (was the topic "
                    "recreated?): reading it from the beginning",
                    tp.topic,
                    tp.partition,
                    at,
                    ends[tp],
                )
                at = None
            if at is None:
                consumer.seek(tp, firsts[tp])
                continue
            if at < firsts[tp]:
                self.gaps += 1
                log.error(
                    "%s[%d]: records %d..%d were deleted by retention before they were read; "
                    "reading on from %d",
                    tp.topic,
                    tp.partition,
                    at,
                    firsts[tp] - 1,
                    firsts[tp],
                )
                at = firsts[tp]
            consumer.seek(tp, at)

    async def _run(self) -> None:
        consumer, partitions = await self._connect()
        self._consumer = consumer
        await self._seek(consumer, partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        pending = set(partitions)
        while True:
            for tp in list(pending):
                # Position, not the last offset seen: transaction markers can sit at the end.
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if not pending and not self.caught_up.is_set():
                self.caught_up.set()
                log.info("log %s caught up", self._topics)
            batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
            records = [
                Received(
                    r.topic,
                    r.partition,
                    r.offset,
                    r.timestamp,
                    r.key or b"",
                    r.value or b"",
                    tuple(r.headers or ()),
                )
                for tp_records in batches.values()
                for r in tp_records
            ]
            if records:
                async with self._batch:
                    try:
                        await self._on_batch(records)
                    except Exception:
                        log.exception("storing a batch of %s failed: reading stops", self._topics)
                        raise
            for tp in partitions:
                high = consumer.highwater(tp)
                if high is not None:
                    # Position, not stored offsets: it moves past transaction markers.
                    position = await consumer.position(tp)
                    self._lags[(tp.topic, tp.partition)] = max(high - position, 0)

    def lag(self) -> list[tuple[tuple[str, int], int]]:
        """Records between what was handed over and each partition's end, as last seen."""
        return list(self._lags.items())


async def read_table(
    kafka: KafkaSettings, topic: str, partitions: Iterable[int] | None = None
) -> dict[bytes, bytes | None]:
    """A compacted topic's current content, read once to its end (key -> last value); only
    the `partitions` given, if any (a co-partitioned changelog restored for what a consumer
    was assigned)."""
    consumer = AIOKafkaConsumer(
        topic,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        **client_options(kafka),
    )
    table: dict[bytes, bytes | None] = {}
    wanted = None if partitions is None else set(partitions)
    try:
        await consumer.start()
        tps = [
            TopicPartition(topic, p)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
            if wanted is None or p in wanted
        ]
        if not tps:
            raise KafkaUnavailable(f"topic {topic} has no partitions (not created yet?)")
        if wanted is not None:
            # Subscribed without a group: start() loaded the metadata; now only these.
            consumer.unsubscribe()
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    table[record.key or b""] = record.value
    except KafkaError as exc:
        raise KafkaUnavailable(f"reading {topic}: {exc!r}") from exc
    finally:
        await close_consumer(consumer)
    return table


LagSource = Callable[[], Iterable[tuple[tuple[str, int], int]]]


class LagCollector(Collector):
    """`handoff_consumer_lag_records{group, topic, partition}` (or the family `name`), read at
    scrape time from `(topic, partition), lag` pairs; `more` adds the (group, source) of a
    service's other consumer loops (one family per registry)."""

    def __init__(
        self,
        group: str,
        sources: LagSource,
        more: Sequence[tuple[str, LagSource]] = (),
        *,
        name: str = "handoff_consumer_lag_records",
        documentation: str = "Records between the consumer's committed position and the "
        "partition's end.",
    ) -> None:
        self._loops = [(group, sources), *more]
        self._name = name
        self._documentation = documentation

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            self._name, self._documentation, labels=["group", "topic", "partition"]
        )
        for group, sources in self._loops:
            for (topic, partition), lag in sources():
                family.add_metric([group, topic, str(partition)], lag)
        yield family
