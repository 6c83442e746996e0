"""sla's Kafka entrypoint: routed events in, decisions, status rows and changelog out.

Delivery semantics: exactly-once per input partition of `handoff.routed.v1`, by the shared
exactly-once plumbing (`shared.exactly_once`: one transactional producer per partition,
fencing, restore, sticky assignment). One Kafka transaction per batch of records, or per timer
wake-up, holds the decisions (`sla.decisions.v1`), the status rows (`sla.status.v1`), the
changelog records of what changed (`sla.state.v1`, same partition number), the dead letters
(`handoff.routed.v1.dlq`) and, for input batches, the consumer offsets.

This module translates and nothing more: records are decoded here (an undecodable one is a
dead letter), the use case (`sla.handlers.PartitionClocks`) decides, and what it returns is
encoded into records (changelog records by `sla.adapters.changelog`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from shared.calendar import from_us, to_us
from shared.clock import Clock
from shared.events import Envelope
from shared.exactly_once import ExactlyOnceConsumer, Output, Record, Transaction
from shared.kafka import DecodeError, dead_letter_headers, decode, failure_headers
from shared.settings import KafkaSettings
from shared.topics import Stream
from shared.tracing import carried_on, carries, consuming
from sla.adapters import changelog
from sla.adapters.telemetry import SlaTelemetry
from sla.domain.book import Book
from sla.handlers import PartitionClocks, Written

log = logging.getLogger(__name__)


class SlaPartition:
    """One input partition as the plumbing sees it (a `PartitionState`)."""

    def __init__(
        self,
        partition: int,
        clocks: PartitionClocks,
        *,
        kafka: KafkaSettings,
        group: str,
        telemetry: SlaTelemetry,
    ) -> None:
        topics = kafka.topics
        self.partition = partition
        self.clocks = clocks
        self._group = group
        self._telemetry = telemetry
        self._routed = topics.name(Stream.ROUTED)
        self._decisions = topics.name(Stream.DECISIONS)
        self._status = topics.name(Stream.STATUS)
        self._changelog = topics.name(Stream.SLA_STATE)
        self._dlq = topics.dlq(Stream.ROUTED)

    # ------------------------------------------------------------------ restore

    def load(self, records: Sequence[Record]) -> None:
        """Changelog records back into the book."""
        unreadable = changelog.load(self.clocks.book, records)
        if unreadable:
            self._telemetry.unreadable.inc(unreadable)

    def loaded(self, now: datetime) -> None:
        """The changelog was read to its end: rebuild the timer heaps."""
        self.clocks.loaded(to_us(now))

    # ------------------------------------------------------------------ input and time

    def process(self, records: Sequence[Record], now: datetime) -> Transaction:
        """Decode, hand to the use case, encode what it returns."""
        events: list[Envelope] = []
        sources: list[Record] = []
        outputs: list[Output] = []
        processed: list[tuple[str, str, str]] = []
        carried: dict[str, list[tuple[str, bytes]]] = {}
        for record in records:
            try:
                event = decode(record)
            except DecodeError as exc:
                outputs.append(self._dead_letter(record, "invalid", str(exc)))
                processed.append((record.topic, "unknown", "invalid"))
                continue
            events.append(event)
            sources.append(record)
            if carries(record.headers):
                # What the event decides carries its trace and request id on.
                carried[event.event_id] = carried_on(
                    record.headers,
                    record.topic,
                    handoff_id=event.key,
                    case_id=event.correlation_id,
                    event_id=event.event_id,
                )
        written = self.clocks.apply(
            events, to_us(now), [(r.offset, r.value or b"") for r in sources]
        )
        for index, code, reason in written.rejected:
            event = events[index]
            outputs.append(self._dead_letter(sources[index], code, reason, event))
            processed.append((self._routed, events[index].event_type, "invalid"))
            if code == "uncomputable":
                self._telemetry.uncomputable.inc()
        processed.extend((self._routed, t, r) for t, r in written.results)
        return self._transaction(written, outputs, processed, carried)

    def tick(self, now: datetime) -> Transaction | None:
        """What time has made due."""
        written = self.clocks.tick(to_us(now))
        if written is None:
            return None
        for handoff_id, why in written.uncomputable:
            log.error(
                "partition %d: clocks of %r cannot be computed (%s)",
                self.partition,
                handoff_id,
                why,
            )
            self._telemetry.uncomputable.inc()
        return self._transaction(written, [], [])

    def next_wake(self) -> datetime | None:
        """The book's next wake-up."""
        wake = self.clocks.next_wake()
        return None if wake is None else from_us(wake)

    # ------------------------------------------------------------------ encoding

    def _transaction(
        self,
        written: Written,
        outputs: list[Output],
        processed: list[tuple[str, str, str]],
        carried: dict[str, list[tuple[str, bytes]]] | None = None,
    ) -> Transaction:
        p = self.partition
        for handoff_id, why in written.unreadable:
            log.error(
                "partition %d: changelog record of %r unreadable (%s); lost", p, handoff_id, why
            )
            self._telemetry.unreadable.inc()
        for handoff_id, waiting in written.abandoned:
            outputs.extend(self._abandoned(handoff_id, waiting))
        for std_key, standard in written.standards:
            key, value = changelog.standard_record(standard, std_key)
            outputs.append(Output(self._changelog, key, value, partition=p))
        if written.stream_time is not None:
            key, value = changelog.stream_record(written.stream_time)
            outputs.append(Output(self._changelog, key, value, partition=p))
        # Keyed by handoff like the input: same partition number, so a handoff's input,
        # decisions, status and changelog all live in partition p.
        debug = log.isEnabledFor(logging.DEBUG)
        for event, cause in zip(written.decisions, written.causes, strict=True):
            extra = carried.get(cause) if carried and cause is not None else None
            headers = [*event.headers, *extra] if extra else event.headers
            outputs.append(Output(self._decisions, event.key, event.value, headers, p))
            if debug:
                ids = {"handoff_id": event.key.decode(), "decision_id": event.event_id}
                log.debug("%s decided", event.event_type, extra={**ids, "event_id": cause})
        for key, row in written.status:
            outputs.append(Output(self._status, key, row, partition=p))
        for handoff_id, handoff in written.changed:
            record = None if handoff is None else changelog.encode(handoff)
            outputs.append(Output(self._changelog, handoff_id.encode(), record, partition=p))
        types = [e.event_type for e in written.decisions]
        missed = written.missed

        def committed(at: datetime) -> None:
            self._telemetry.committed(p, at, types, missed, processed)

        return Transaction(outputs, committed)

    def _abandoned(self, handoff_id: str, waiting: list[tuple[int, bytes]]) -> list[Output]:
        """The events of an orphan given up on, dead-lettered as they came."""
        retention = self.clocks.book.orphan_retention_us // 1_000_000
        reason = (
            f"no submitted or expected event arrived for handoff {handoff_id!r} within "
            f"{retention}s (SLA_ORPHAN_RETENTION_S) of its first event: post the handoff's "
            "opening event, then replay this one"
        )
        log.warning(
            "dead-lettering %d event(s) of orphan %r",
            len(waiting),
            handoff_id,
            extra={"handoff_id": handoff_id},
        )
        self._telemetry.orphans.inc(len(waiting))
        return [
            Output(
                self._dlq,
                handoff_id.encode(),
                value,
                dead_letter_headers(
                    self._routed, self.partition, offset, self._group, "unknown-handoff", reason
                ),
                partition=0,
            )
            for offset, value in waiting
        ]

    def _dead_letter(
        self, record: Record, code: str, reason: str, event: Envelope | None = None
    ) -> Output:
        handoff_id = event.key if event else (record.key or b"").decode(errors="replace")
        with consuming(
            record.headers,
            record.topic,
            handoff_id=handoff_id,
            case_id=event.correlation_id if event else None,
            event_id=event.event_id if event else None,
        ):
            log.warning("dead-lettering %s@%d: %s", record.topic, record.offset, reason)
        headers = failure_headers(record, self._group, code, reason)
        return Output(self._dlq, record.key or b"", record.value, headers, partition=0)


class SlaConsumer:
    """The group member and the partitions it works on."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        clock: Clock,
        telemetry: SlaTelemetry,
        group: str,
        retention_us: int,
        orphan_retention_us: int,
        idle_us: int,
        max_records: int = 200,
    ) -> None:
        def factory(partition: int) -> SlaPartition:
            clocks = PartitionClocks(retention_us, orphan_retention_us, idle_us)
            return SlaPartition(partition, clocks, kafka=kafka, group=group, telemetry=telemetry)

        self.plumbing = ExactlyOnceConsumer(
            kafka,
            topic=kafka.topics.name(Stream.ROUTED),
            changelog=kafka.topics.name(Stream.SLA_STATE),
            group=group,
            clock=clock,
            factory=factory,
            observer=telemetry,
            max_records=max_records,
        )

    @property
    def ready(self) -> bool:
        """Joined, and every assigned partition is up with live workers."""
        return self.plumbing.ready

    def partitions(self) -> dict[int, PartitionClocks]:
        """The clocks of the partitions this instance works on now."""
        out: dict[int, PartitionClocks] = {}
        for partition, state in self.plumbing.states().items():
            assert isinstance(state, SlaPartition)
            out[partition] = state.clocks
        return out

    def books(self) -> dict[int, Book]:
        """The books of the partitions this instance works on now."""
        return {partition: clocks.book for partition, clocks in self.partitions().items()}

    async def start(self) -> None:
        """Join the group (in the background)."""
        await self.plumbing.start()

    async def stop(self) -> None:
        """Finish the transactions in hand and leave the group."""
        await self.plumbing.stop()
