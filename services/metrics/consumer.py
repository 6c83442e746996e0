"""metrics' Kafka entrypoint: two table readers and one consumer loop, wired to the handlers.

Delivery semantics:
- `routing.processmap.v1` and `sla.status.v1` (compacted): read from the beginning at every
  start, no consumer group, no commits (shared TableReader); the catalog and the status board
  are rebuilt from Kafka, so the gauges computed from them never drift.
- `sla.decisions.v1` and `handoff.routed.v1`: consumer group `metrics`, read_committed (the sla
  service writes decisions in transactions), at-least-once delivery made exactly-once for what
  is *exposed*: de-duplicated by event_id (ConsumerLoop's window, and per event id in the
  staging), effects staged per partition and applied only after that partition's offsets are
  committed. A crash before the commit replays records whose effects were never exposed.
  Unlabelable events (a process the catalog lacks) go to the DLQ and count as invalid.
- The consumer starts only once a process map is loaded and both tables caught up: labelling
  needs the catalog, and rework/ratings need the pairs the status table knows.
- The report store reads `sla.decisions.v1` and `handoff.routed.v1` on its own (shared
  PositionedLog: no group, no Kafka commits, every partition): each batch's rows and the
  positions after it go into the DuckDB file in one transaction, and reading resumes from the
  positions stored there -- a restart loses nothing and stores nothing twice. Every instance
  keeps the whole history (its own file), whatever partitions its group member owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry

from metrics.handlers import HistoryRecorder, MetricsService
from metrics.settings import Settings
from shared.events import PAYLOADS
from shared.kafka import (
    BrokerWatch,
    ConsumerLoop,
    LagCollector,
    PositionedLog,
    ProcessedCounter,
    Publisher,
    TableReader,
)
from shared.topics import Stream

log = logging.getLogger(__name__)


class MetricsConsumer:
    """Starts and stops the readers and the loop, and says whether the service is ready."""

    def __init__(
        self,
        settings: Settings,
        service: MetricsService,
        registry: CollectorRegistry,
        processed: ProcessedCounter,
        recorder: HistoryRecorder,
    ) -> None:
        kafka = settings.kafka
        topics = kafka.topics
        group = kafka.group("metrics")
        self._service = service
        self.watch = BrokerWatch(kafka, "metrics")
        self.publisher = Publisher(kafka, client_id=group, watch=self.watch)
        self.map_reader = TableReader(
            kafka, [topics.name(Stream.PROCESS_MAP)], service.on_process_map
        )
        self.status_reader = TableReader(kafka, [topics.name(Stream.STATUS)], service.on_status)
        self.loop = ConsumerLoop(
            kafka=kafka,
            topics=[topics.name(Stream.DECISIONS), topics.name(Stream.ROUTED)],
            group_id=group,
            handler=service.handle,
            publisher=self.publisher,
            dlq_topic=topics.dlq_of,
            processed=processed,
            known_event_types=frozenset(t for t, _ in PAYLOADS),
            dedup_window=settings.dedup_window,
            after_commit=service.after_commit,
            revoked=service.revoked,
        )
        registry.register(LagCollector(group, self.loop.lag))
        self.recorder = recorder
        self.history = PositionedLog(
            kafka,
            [topics.name(Stream.DECISIONS), topics.name(Stream.ROUTED)],
            recorder.resume,
            recorder.on_batch,
        )
        registry.register(
            LagCollector(
                kafka.group("metrics-history"),
                self.history.lag,
                name="handoff_history_lag_records",
                documentation="Records on the topics the report store has not stored yet.",
            )
        )
        self._starter: asyncio.Task[None] | None = None
        self._loop_started = False

    async def start(self) -> None:
        """Start the table readers now, the consumer once they are ready (in the background)."""
        await self.watch.start()
        await self.publisher.start()
        await self.map_reader.start()
        await self.status_reader.start()
        await self.history.start()
        self._starter = asyncio.create_task(self._start_consumer(), name="metrics-starter")

    async def _start_consumer(self) -> None:
        await self.map_reader.caught_up.wait()
        if not self._service.catalog_loaded.is_set():
            log.warning("no process map published yet: waiting for one before consuming")
        await self._service.catalog_loaded.wait()
        await self.status_reader.caught_up.wait()
        await self.loop.start()
        self._loop_started = True

    async def stop(self) -> None:
        """Stop in reverse: the loop (which commits the batch in hand), readers, producer."""
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        await self.loop.stop()
        await self.history.stop()
        await self.status_reader.stop()
        await self.map_reader.stop()
        await self.publisher.stop()
        await self.watch.stop()

    def checks(self) -> dict[str, bool]:
        """Readiness: a catalog, both tables caught up and followed, the consumer joined its
        group and still consuming (a dead task would freeze every metric silently)."""
        return {
            "kafka": self.watch.connected,
            "process_map": self.map_reader.ready and self._service.catalog_loaded.is_set(),
            "status_table": self.status_reader.ready,
            "consumer": self._loop_started and self.loop.running and self.loop.joined.is_set(),
            "history": self.history.running,
        }

    def history_lag(self) -> int:
        """Records on the topics the report store has not stored yet."""
        return sum(lag for _, lag in self.history.lag())
