"""Where accepted events go, and what intake reads back from Kafka.

Delivery semantics:
- `EventSink`: at-least-once to the raw lifecycle topic; the HTTP 202 waits for acks=all of
  every event in the request, bounded by the publisher's timeout (503 beyond it); keyed by
  handoff id; a retried request reuses its event ids, so downstream de-duplication by event_id
  absorbs any repeat. Replays of dead letters go the same way, with their original id. Every
  record carries the request's `x-request-id` and `traceparent` headers (shared.tracing).
- `MapTable`: the compacted process-map topic, read from the beginning at every start and
  followed (no group, no commits), a map assembled from its parts when its manifest arrives
  (shared.mapwire): the door routes with the map routing applies.
- `Directory`: the compacted `sla.status.v1` table, reduced to handoff -> (supplier,
  receiver), plus the handoffs this instance opened itself (the table lags by a few ms): what a
  scoped key's later events are checked against.
- `DeadLetters`: every `*.dlq` topic read as a log from the beginning of its retention.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime

import orjson

from intake.domain.events import Pair
from intake.domain.rejections import REPLAY_OF, REPLAYED_BY, DeadLetter, Rejection, RejectionIndex
from shared.contracts import ProcessMapV1
from shared.events import EncodedEvent
from shared.kafka import LogFollower, Publisher, Received, TableReader
from shared.mapwire import CorruptMap, MapAssembler
from shared.routes import Router
from shared.settings import KafkaSettings
from shared.topics import DLQ_SOURCES, Stream
from shared.tracing import kafka_headers

log = logging.getLogger(__name__)


class EventSink:
    """Publishes accepted lifecycle events to the raw topic."""

    def __init__(self, publisher: Publisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic

    async def write(self, records: Sequence[EncodedEvent]) -> None:
        """Write every record; returns once all are acknowledged (raises KafkaUnavailable).
        Each carries the request's id and trace context (shared.tracing) on."""
        topic = self._topic
        carried = kafka_headers()
        await self._publisher.write(
            [
                (topic, r.value, r.key, [*r.headers, *carried] if carried else r.headers, None)
                for r in records
            ]
        )
        if log.isEnabledFor(logging.DEBUG):
            for r in records:
                case_id = orjson.loads(r.value).get("correlation_id")
                ids = {"handoff_id": r.key.decode(), "event_id": r.event_id, "case_id": case_id}
                log.debug("%s accepted", r.event_type, extra=ids)

    async def replay(self, rejection: Rejection, by: str, at: datetime) -> None:
        """Post a dead letter's original event again, then record that it was replayed."""
        headers = [(k, v) for k, v in rejection.headers if not k.startswith("dlq.")]
        headers.append(("baton_replay_of", rejection.id.encode()))
        key = rejection.handoff_id.encode()
        await self._publisher.write([(self._topic, rejection.value, key, headers, None)])
        marker = [
            (REPLAY_OF, rejection.id.encode()),
            (REPLAYED_BY, by.encode()),
            ("dlq.replayed_at", at.isoformat().encode()),
        ]
        await self._publisher.write([(rejection.dlq_topic, b"", key, marker, None)])


class MapTable:
    """The process map in force, as routing published it, and the router built from it."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.router: Router | None = None
        self.map: ProcessMapV1 | None = None
        self._assembler = MapAssembler()
        self.reader = TableReader(kafka, [kafka.topics.name(Stream.PROCESS_MAP)], self._on_map)

    @property
    def ready(self) -> bool:
        """A map is known and the topic is followed."""
        return self.router is not None and self.reader.ready

    def _on_map(self, key: bytes, value: bytes | None) -> None:
        # Parts are held until their manifest (`current`) arrives; a tombstone withdraws
        # nothing routing still applies.
        try:
            pmap = self._assembler.feed(key, value)
        except CorruptMap as exc:
            log.error("unreadable process map record ignored: %s", str(exc)[:300])
            return
        if pmap is None:
            return
        self.router, self.map = Router(pmap), pmap
        log.info("process map version %d in force at the door", pmap.version)


class Directory:
    """handoff id -> (supplier, receiver), from sla's status table and this instance's own
    accepted openings (bounded: the oldest own entries are forgotten first)."""

    def __init__(self, kafka: KafkaSettings | None, own_capacity: int = 100_000) -> None:
        self._table: dict[str, Pair] = {}
        self._own: OrderedDict[str, Pair] = OrderedDict()
        self._own_capacity = own_capacity
        self._pairs: dict[Pair, Pair] = {}
        self.reader = (
            TableReader(kafka, [kafka.topics.name(Stream.STATUS)], self._on_status)
            if kafka is not None
            else None
        )

    @property
    def ready(self) -> bool:
        """Caught up with the status table (always, when it is not followed)."""
        return self.reader is None or self.reader.ready

    def __len__(self) -> int:
        return len(self._table) + len(self._own)

    def pair_of(self, handoff_id: str) -> Pair | None:
        """What is known of a handoff, or None."""
        return self._table.get(handoff_id) or self._own.get(handoff_id)

    def opened(self, handoffs: dict[str, Pair]) -> None:
        """Remember handoffs this instance just accepted (before sla's table shows them)."""
        if self.reader is None:
            return
        for handoff_id, pair in handoffs.items():
            self._own[handoff_id] = self._pairs.setdefault(pair, pair)
        while len(self._own) > self._own_capacity:
            self._own.popitem(last=False)

    def _on_status(self, key: bytes, value: bytes | None) -> None:
        handoff_id = key.decode(errors="replace")
        if value is None:
            self._table.pop(handoff_id, None)
            self._own.pop(handoff_id, None)
            return
        try:
            row = orjson.loads(value)
            pair = (str(row["from"]), str(row["to"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        self._table[handoff_id] = self._pairs.setdefault(pair, pair)
        self._own.pop(handoff_id, None)


class DeadLetters:
    """Every dead-letter topic, followed into the rejection index."""

    def __init__(self, kafka: KafkaSettings, index: RejectionIndex) -> None:
        self.index = index
        topics = [kafka.topics.dlq(s) for s in DLQ_SOURCES]
        self.reader = LogFollower(kafka, topics, self._on_record)

    @property
    def ready(self) -> bool:
        """Caught up with every dead-letter topic."""
        return self.reader.ready

    def _on_record(self, record: Received) -> None:
        self.index.add(
            DeadLetter(
                record.topic,
                record.partition,
                record.offset,
                record.timestamp_ms,
                record.key,
                record.value,
                record.headers,
            )
        )
