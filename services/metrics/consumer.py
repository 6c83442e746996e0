"""metrics' Kafka entrypoint: two table readers and one transactional consumer loop, wired to
the handlers.

Delivery semantics:
- `routing.processmap.v1` and `sla.status.v1` (compacted): read from the beginning at every
  start, no consumer group, no commits (shared TableReader); the catalog and the status board
  are rebuilt from Kafka, so the gauges computed from them never drift.
- `sla.decisions.v1` and `handoff.routed.v1`: consumer group `metrics-<shard>` (one member:
  every partition), read_committed, exactly-once (shared TransactionalLoop): each fetch is one
  transaction holding the changed pair tallies (`metrics.state.v1`, compacted), the dead
  letters and the consumer offsets, exposed only once it committed. At start, after fencing
  any previous process of the same shard, the tallies are restored from `metrics.state.v1`
  and the counters continue from there. Unlabelable events go to the DLQ, counted invalid.
- The consumer starts only once a process map is loaded and both tables caught up: labelling
  needs the catalog, and rework/ratings need the pairs the status table knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry

from metrics.handlers import MetricsService
from metrics.settings import Settings
from shared.events import PAYLOADS
from shared.kafka import (
    BrokerWatch,
    KafkaUnavailable,
    LagCollector,
    ProcessedCounter,
    TableReader,
    read_table,
)
from shared.retry import retrying
from shared.topics import Stream
from shared.transactional import TransactionalLoop

log = logging.getLogger(__name__)


class MetricsConsumer:
    """Starts and stops the readers and the loop, and says whether the service is ready."""

    def __init__(
        self,
        settings: Settings,
        service: MetricsService,
        registry: CollectorRegistry,
        processed: ProcessedCounter,
    ) -> None:
        kafka = settings.kafka
        topics = kafka.topics
        group = kafka.group(f"metrics-{service.shard.name}")
        self._service = service
        self._kafka = kafka
        self._changelog = topics.name(Stream.METRICS_STATE)
        self.watch = BrokerWatch(kafka, "metrics")
        self.map_reader = TableReader(
            kafka, [topics.name(Stream.PROCESS_MAP)], service.on_process_map
        )
        self.status_reader = TableReader(kafka, [topics.name(Stream.STATUS)], service.on_status)
        self.loop = TransactionalLoop(
            kafka=kafka,
            topics=[topics.name(Stream.DECISIONS), topics.name(Stream.ROUTED)],
            group_id=group,
            transactional_id=group,
            handler=service,
            dlq_topic=topics.dlq_of,
            processed=processed,
            known_event_types=frozenset(t for t, _ in PAYLOADS),
            on_start=self._restore,
            dedup_window=settings.dedup_window,
        )
        registry.register(LagCollector(group, self.loop.lag))
        self._starter: asyncio.Task[None] | None = None
        self._loop_started = False

    async def start(self) -> None:
        """Start the table readers now, the consumer once they are ready (in the background)."""
        await self.watch.start()
        await self.map_reader.start()
        await self.status_reader.start()
        self._starter = asyncio.create_task(self._start_consumer(), name="metrics-starter")

    async def _start_consumer(self) -> None:
        await self.map_reader.caught_up.wait()
        if not self._service.catalog_loaded.is_set():
            log.warning("no process map published yet: waiting for one before consuming")
        await self._service.catalog_loaded.wait()
        await self.status_reader.caught_up.wait()
        await self.loop.start()
        self._loop_started = True

    async def _restore(self) -> None:
        """After fencing, before consuming: the totals of this shard from its changelog."""
        table = await retrying(
            lambda: read_table(self._kafka, self._changelog),
            on=(KafkaUnavailable,),
            what="reading the metrics changelog",
        )
        self._service.restore(table)

    async def stop(self) -> None:
        """Stop in reverse: the loop (which commits the fetch in hand), readers."""
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        await self.loop.stop()
        await self.status_reader.stop()
        await self.map_reader.stop()
        await self.watch.stop()

    def checks(self) -> dict[str, bool]:
        """Readiness: a catalog, both tables caught up and followed, the totals restored, the
        consumer joined its group and still consuming (a dead or fenced task would freeze
        every metric silently)."""
        return {
            "kafka": self.watch.connected,
            "process_map": self.map_reader.ready and self._service.catalog_loaded.is_set(),
            "status_table": self.status_reader.ready,
            "consumer": self._loop_started
            and self.loop.running
            and self.loop.restored.is_set()
            and self.loop.joined.is_set(),
        }
