"""routing's Kafka entrypoints: put the process map in force, then route every raw event, and
turn SLA decisions into notifications that the outbox owner delivers.

Delivery semantics:
- raw events (shared.kafka.ConsumerLoop, group "routing"): at-least-once from
  `handoff.events.v1` to `handoff.routed.v1`, idempotent on event_id downstream (a routed event
  keeps its raw event's id and key, the handoff id); the rows of `routing.handoffs.v1`
  (co-partitioned: written to the raw record's partition number), the next handoffs of chains
  (to the raw topic) and outbox records go out with them, acknowledged before the commit. The
  map must be versioned -- which needs the last record of `routing.processmap.v1` -- before the
  first event is routed, because routed events carry the standard's version: the loop starts
  only once the map is in force.
- decisions (ConsumerLoop, group "routing-notify"): at-least-once from `sla.decisions.v1` to
  the outbox `routing.notifications.v1`, records keyed by notification id (derived from the
  decision id: a redelivery writes the same records, the outbox keeps one).
- the outbox (shared.owned.OwnedTopic, group "routing-outbox"): each member owns some outbox
  partitions, rebuilds them from their beginning on assignment and delivers what is pending
  (handlers.DeliverNotifications: at-least-once with an idempotency key; never again once the
  sent marker is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry

from routing.adapters.facts import FactsTopic
from routing.adapters.kafka import CorruptMapRecord
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Versioned
from routing.handlers import (
    ChainCounter,
    DeliverNotifications,
    HandoffBook,
    MapKeeper,
    MapState,
    Notices,
    NotifyDecisions,
    RejectedCounter,
    RouteEvents,
    RoutingTopics,
)
from shared.clock import Clock
from shared.events import LIFECYCLE_TYPES, PAYLOADS, Envelope
from shared.kafka import (
    ConsumerLoop,
    KafkaUnavailable,
    LagCollector,
    Output,
    ProcessedCounter,
    Publisher,
    Source,
)
from shared.mapwire import MapTooLarge
from shared.owned import OwnedTopic
from shared.retry import retrying
from shared.settings import KafkaSettings
from shared.topics import Stream

log = logging.getLogger(__name__)


class Notifications:
    """The decisions loop and the outbox owner (started once the map is in force)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        maps: MapState,
        publisher: Publisher,
        processed: ProcessedCounter,
        notices: Notices,
        deliveries: DeliverNotifications,
        sla_url: str,
    ) -> None:
        topics = kafka.topics
        self.deliveries = deliveries
        self.group = kafka.group("routing-notify")
        decide = NotifyDecisions(maps, notices, sla_url)

        async def handle(envelope: Envelope, source: Source) -> Sequence[Output]:
            return await decide(envelope)

        self.loop = ConsumerLoop(
            kafka=kafka,
            topics=[topics.name(Stream.DECISIONS)],
            group_id=self.group,
            handler=handle,
            publisher=publisher,
            dlq_topic=topics.dlq_of,
            processed=processed,
            known_event_types=frozenset(t for t, _ in PAYLOADS if t.startswith("sla.")),
        )
        self.owned = OwnedTopic(
            kafka, topics.name(Stream.NOTIFICATIONS), kafka.group("routing-outbox"), deliveries
        )

    async def start(self) -> None:
        """Consume decisions, own outbox partitions, deliver."""
        await self.deliveries.start()
        await self.owned.start()
        await self.loop.start()

    async def stop(self) -> None:
        """Stop consuming decisions, stop delivering (posts in flight land), leave the group."""
        await self.loop.stop()
        await self.deliveries.stop()
        await self.owned.stop()

    def checks(self) -> dict[str, bool]:
        """Readiness: both joined, every owned outbox partition restored."""
        return {
            "decisions": self.loop.joined.is_set(),
            "outbox": self.owned.joined.is_set() and not self.owned.restoring,
        }


class RoutingConsumer:
    """The consumer loops and what must happen before they may start."""

    def __init__(
        self,
        kafka: KafkaSettings,
        maps: MapState,
        keeper: MapKeeper,
        publisher: Publisher,
        registry: CollectorRegistry,
        draft: ProcessMapDraft,
        *,
        clock: Clock,
        max_chain_depth: int,
        sla_url: str,
        notices: Notices,
        notifications: Notifications | None,
        processed: ProcessedCounter,
    ) -> None:
        topics = kafka.topics
        group = kafka.group("routing")
        self._maps = maps
        self._keeper = keeper
        self._publisher = publisher
        self._draft: ProcessMapDraft | None = draft
        self._notifications = notifications
        facts = FactsTopic(kafka)
        self._raw, self._handoffs = topics.name(Stream.RAW), facts.topic
        self.book = HandoffBook(facts)
        self._route = RouteEvents(
            maps,
            RoutingTopics(
                raw=self._raw,
                routed=topics.name(Stream.ROUTED),
                handoffs=facts.topic,
                outbox=topics.name(Stream.NOTIFICATIONS),
            ),
            RejectedCounter(registry),
            book=self.book,
            store=facts,
            chains=ChainCounter(registry),
            notices=notices,
            clock=clock,
            max_depth=max_chain_depth,
            sla_url=sla_url,
            notify=notifications is not None,
        )
        self.loop = ConsumerLoop(
            kafka=kafka,
            topics=[self._raw],
            group_id=group,
            handler=self._handle,
            publisher=publisher,
            dlq_topic=topics.dlq_of,
            processed=processed,
            known_event_types=frozenset(LIFECYCLE_TYPES),
            revoked=self._revoked,
        )
        more = [] if notifications is None else [(notifications.group, notifications.loop.lag)]
        registry.register(LagCollector(group, self.loop.lag, more))
        self._starting: asyncio.Task[None] | None = None

    async def _handle(self, envelope: Envelope, source: Source) -> Sequence[Output]:
        return await self._route(envelope, source[1])

    def _revoked(self, partitions: Iterable[Source]) -> None:
        self.book.forget(partition for _, partition in partitions)

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
        if not await self._co_partitioned():
            return
        await self.loop.start()
        if self._notifications is not None:
            await self._notifications.start()

    async def _co_partitioned(self) -> bool:
        """The handoff changelog is written to the raw record's partition number: both topics
        must have as many partitions, or rows would go astray."""
        counts = await retrying(
            lambda: asyncio.gather(
                self._publisher.partition_count(self._raw),
                self._publisher.partition_count(self._handoffs),
            ),
            on=(KafkaUnavailable,),
            what="reading partition counts",
        )
        if counts[0] != counts[1]:
            log.error(
                "%s has %d partitions but %s has %d: they must have the same count (grow both "
                "together); routing stays not ready",
                self._raw,
                counts[0],
                self._handoffs,
                counts[1],
            )
            return False
        return True

    async def stop(self) -> None:
        """Stop starting, then the loops (which finish and commit the batch in hand)."""
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.loop.stop()
        if self._notifications is not None:
            await self._notifications.stop()

    def checks(self) -> dict[str, bool]:
        """Readiness: a map in force, the consumers joined, the outbox restored."""
        checks = {"process_map": self._maps.loaded, "consumer": self.loop.joined.is_set()}
        if self._notifications is not None:
            checks |= self._notifications.checks()
        return checks
