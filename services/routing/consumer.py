"""routing's Kafka entrypoint: put the process map in force, then route every raw event.

Delivery semantics (shared.kafka.ConsumerLoop, group "routing"): at-least-once from
`handoff.events.v1` to `handoff.routed.v1`, idempotent on event_id downstream (a routed event
keeps its raw event's id and key, the handoff id). The map must be versioned -- which needs the
last record of `routing.processmap.v1` -- before the first event is routed, because routed
events carry the standard's version: the loop starts only once the map is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from routing.adapters.kafka import CorruptMapRecord
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Versioned
from routing.handlers import MapKeeper, MapState, RejectedCounter, RouteEvents
from shared.events import LIFECYCLE_TYPES, Envelope
from shared.kafka import (
    ConsumerLoop,
    LagCollector,
    Outbound,
    ProcessedCounter,
    Publisher,
    Source,
)
from shared.mapwire import MapTooLarge
from shared.retry import retrying
from shared.settings import KafkaSettings
from shared.topics import Stream

log = logging.getLogger(__name__)


class RoutingConsumer:
    """The consumer loop and what must happen before it may start."""

    def __init__(
        self,
        kafka: KafkaSettings,
        maps: MapState,
        keeper: MapKeeper,
        publisher: Publisher,
        registry: CollectorRegistry,
        draft: ProcessMapDraft,
    ) -> None:
        topics = kafka.topics
        group = kafka.group("routing")
        self._maps = maps
        self._keeper = keeper
        self._draft: ProcessMapDraft | None = draft
        self._route = RouteEvents(maps, topics.name(Stream.ROUTED), RejectedCounter(registry))
        self.loop = ConsumerLoop(
            kafka=kafka,
            topics=[topics.name(Stream.RAW)],
            group_id=group,
            handler=self._handle,
            publisher=publisher,
            dlq_topic=topics.dlq_of,
            processed=ProcessedCounter(registry),
            known_event_types=frozenset(LIFECYCLE_TYPES),
        )
        registry.register(LagCollector(group, self.loop.lag))
        self._starting: asyncio.Task[None] | None = None

    async def _handle(self, envelope: Envelope, source: Source) -> Sequence[Outbound]:
        return await self._route(envelope)

    async def start(self) -> None:
        """Put the map in force and start consuming, in the background."""
        self._starting = asyncio.create_task(self._start(), name="routing-start")

    async def _start(self) -> None:
        draft = self._draft
        assert draft is not None

        async def attempt() -> Versioned | None:
            try:
                return await self._keeper.put(draft)
            except (CorruptMapRecord, MapTooLarge) as exc:
                # Not a passing fault: retrying would log the same error forever.
                log.error("cannot put the process map in force; routing stays not ready: %s", exc)
                return None

        versioned = await retrying(attempt, on=(Exception,), what="putting the map in force")
        self._draft = None  # held only until it is in force: a reload reads the file again
        if versioned is None:
            return
        await self.loop.start()

    async def stop(self) -> None:
        """Stop starting, then the loop (which finishes and commits the batch in hand)."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.loop.stop()

    def checks(self) -> dict[str, bool]:
        """Readiness: a map in force and the consumer joined its group."""
        return {"process_map": self._maps.loaded, "consumer": self.loop.joined.is_set()}
