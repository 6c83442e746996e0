"""A consume-transform-produce loop with one Kafka transaction per fetch, for a service whose
state is a changelog of its own (the metrics service's counter tallies).

Delivery semantics: exactly-once for what the handler derives from the input. Each fetch
(records of every assigned partition) is decoded and de-duplicated by event id, handed to the
handler record by record (`handle`, which stages and may raise Rejected), then written as ONE
transaction: the handler's records (`prepare`: its changelog), the dead letters of the fetch,
and the consumer offsets. Only once it committed is the handler told (`committed`), so what it
exposes is always what the committed log says; if the transaction fails the handler drops what
it staged (`aborted`) and the partitions are rewound to their committed offsets.

- Fencing: the transactional id is the member's (one per shard, stable across restarts); a
  restarted or duplicate process fences the previous one at `init_transactions`, which also
  aborts the transaction a SIGKILL left open. A fenced loop stops (readiness goes false).
- Restore: `on_start` runs after the fencing and before the group is joined: the handler reads
  its changelog to the end (read_committed), then consumption resumes at the committed offsets
  that were written in the same transactions as that changelog.
- The event-id window only remembers committed events, so a rewound fetch is not mistaken
  for duplicates; it starts empty at each start (duplicates further apart than one lifetime
  are counted twice: the producers of the consumed topics write each event id once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from shared.events import Envelope
from shared.kafka import (
    DecodeError,
    GroupLoop,
    ProcessedCounter,
    Record,
    Rejected,
    Source,
    client_options,
    decode,
    failure_headers,
    record_context,
    reused_id,
)
from shared.retry import retrying
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)


class BatchHandler(Protocol):
    """The service side of the loop: stage per record, write per fetch, expose on commit."""

    def handle(self, envelope: Envelope, source: Source) -> None:
        """Stage one event's effects; raise Rejected to dead-letter it."""
        ...

    def prepare(self) -> Sequence[Record]:
        """The records of everything staged since the last commit or abort (its changelog)."""
        ...

    def committed(self) -> None:
        """The transaction holding `prepare`'s records and the offsets committed."""
        ...

    def aborted(self) -> None:
        """The transaction failed: forget what was staged (it will be handled again)."""
        ...


class TransactionalLoop(GroupLoop):
    """decode -> de-duplicate -> stage -> one transaction (outputs, dead letters, offsets)."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        topics: Sequence[str],
        group_id: str,
        transactional_id: str,
        handler: BatchHandler,
        dlq_topic: Callable[[str], str],
        processed: ProcessedCounter,
        known_event_types: frozenset[str],
        on_start: Callable[[], Awaitable[None]] | None = None,
        dedup_window: int = 200_000,
        max_records: int = 500,
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
        self._transactional_id = transactional_id
        self._handler = handler
        self._on_start = on_start
        self._producer: AIOKafkaProducer | None = None
        self.restored = asyncio.Event()
        self.fenced = False

    async def _prepare(self) -> None:
        """Fence the previous owner, then restore, before joining the group."""
        self._producer = await self._open_producer()
        if self._on_start is not None:
            await self._on_start()
        self.restored.set()

    async def _close(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()

    async def _open_producer(self) -> AIOKafkaProducer:
        async def attempt() -> AIOKafkaProducer:
            producer = AIOKafkaProducer(
                transactional_id=self._transactional_id,
                enable_idempotence=True,
                acks="all",
                linger_ms=0,
                retry_backoff_ms=10,
                max_batch_size=1024 * 1024,
                **client_options(self._kafka),
            )
            try:
                await producer.start()  # init_transactions: fences the previous owner
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            return producer

        return await retrying(attempt, on=(KafkaError,), what=f"producer {self._group}")

    async def _process(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        dead: list[Record] = []
        counts: list[tuple[str, str, str]] = []
        ids: dict[str, str | None] = {}
        for records in batches.values():
            for record in records:
                self._stage(record, dead, counts, ids)
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
        outputs = [*self._handler.prepare(), *dead]
        try:
            await self._commit(outputs, offsets)
        except ProducerFenced:
            self._handler.aborted()
            self.fenced = True
            log.error("%s: fenced by a newer instance of the same shard; stopping", self._group)
            raise
        except KafkaError as exc:
            self._handler.aborted()
            log.warning("%s: transaction failed (%r); rewinding", self._group, exc)
            # A new producer with the same id: aborts whatever the broker still holds open.
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await self._producer.stop()
            self._producer = await self._open_producer()
            await self._rewind(offsets)
            return
        self._handler.committed()
        for event_id, digest in ids.items():
            self._seen.add(event_id, digest)
        for count in counts:
            self._processed.inc(*count)
        self._positions.update(offsets)

    def _stage(
        self,
        record: ConsumerRecord[bytes, bytes],
        dead: list[Record],
        counts: list[tuple[str, str, str]],
        ids: dict[str, str | None],
    ) -> None:
        try:
            envelope = decode(record)
        except DecodeError as exc:
            with record_context(record, None):
                dead.append(self._dead_letter(record, "invalid", str(exc)))
            counts.append((record.topic, "unknown", "invalid"))
            return
        with record_context(record, envelope):
            self._stage_event(record, envelope, dead, counts, ids)

    def _stage_event(
        self,
        record: ConsumerRecord[bytes, bytes],
        envelope: Envelope,
        dead: list[Record],
        counts: list[tuple[str, str, str]],
        ids: dict[str, str | None],
    ) -> None:
        event_type = self._event_type(envelope)
        event_id, digest = envelope.event_id, envelope.digest
        if event_id in ids or event_id in self._seen:
            seen = ids.get(event_id) if event_id in ids else None
            reused = (
                seen is not None and digest is not None and seen != digest
            ) or self._seen.reused(event_id, digest)
            if reused:
                reason = reused_id(event_id, envelope.key)
                dead.append(self._dead_letter(record, "event-id-reused", reason))
                counts.append((record.topic, event_type, "invalid"))
            else:
                counts.append((record.topic, event_type, "duplicate"))
            return
        try:
            self._handler.handle(envelope, (record.topic, record.partition))
        except Rejected as exc:
            dead.append(self._dead_letter(record, exc.code, exc.reason))
            counts.append((record.topic, event_type, "invalid"))
            return
        except Exception as exc:  # a handler bug: never stall the partition on one event
            log.exception("handler failed on %s", event_id)
            dead.append(self._dead_letter(record, "error", repr(exc)))
            counts.append((record.topic, event_type, "error"))
            return
        ids[event_id] = digest
        counts.append((record.topic, event_type, "ok"))

    def _dead_letter(self, record: ConsumerRecord[bytes, bytes], code: str, reason: str) -> Record:
        log.warning(
            "dead-lettering %s@%d/%d: %s", record.topic, record.partition, record.offset, reason
        )
        headers = failure_headers(record, self._group, code, reason)
        return (
            self._dlq_topic(record.topic),
            record.value or b"",
            record.key or b"",
            headers,
            None,
        )

    async def _commit(self, outputs: Sequence[Record], offsets: dict[TopicPartition, int]) -> None:
        producer = self._producer
        assert producer is not None
        async with producer.transaction():
            for topic, value, key, headers, partition in outputs:
                await producer.send(topic, value, key=key, headers=headers, partition=partition)
            await producer.send_offsets_to_transaction(offsets, self._group)

    async def _rewind(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self._consumer
        assert consumer is not None
        for tp in offsets:
            if tp not in consumer.assignment():
                continue
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
