"""Where accepted events go: the raw lifecycle topic.

Delivery semantics: at-least-once; the HTTP 202 waits for acks=all of every event in the
request; keyed by handoff id; a retried request reuses its event ids, so downstream
de-duplication by event_id absorbs any repeat.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.events import Envelope
from shared.kafka import Outbound, Publisher


class EventSink:
    """Publishes accepted lifecycle events to the raw topic."""

    def __init__(self, publisher: Publisher, topic: str) -> None:
        self._publisher = publisher
        self._topic = topic

    @property
    def ready(self) -> bool:
        """True once the producer is connected."""
        return self._publisher.ready

    async def write(self, envelopes: Sequence[Envelope]) -> None:
        """Write every envelope and return once all are acknowledged (raises KafkaUnavailable)."""
        await self._publisher.publish_many([Outbound(self._topic, e) for e in envelopes])
