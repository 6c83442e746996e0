"""The process-map topic (`routing.processmap.v1`): read the last published map, publish a new one.

Delivery semantics: the map is a table record, not an event: the ProcessMapV1 JSON itself, key
b"current", on a compacted single-partition topic, so the topic's tail is the map in force.
Reading is a plain read-to-end from the beginning (shared read_table: no consumer group,
read_committed), done at start-up. Publishing waits for acks=all. Last writer wins: two
instances started with the same file compute the same versions, so a race between them
publishes the same content twice.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from shared.contracts import ProcessMapV1
from shared.kafka import Publisher, read_table, wait_acks
from shared.settings import KafkaSettings
from shared.topics import Stream

log = logging.getLogger(__name__)

MAP_KEY = b"current"


class CorruptMapRecord(RuntimeError):
    """The last record on the map topic is not a ProcessMapV1: versions cannot be continued."""


class MapTopic:
    """Reads and writes the published process map."""

    def __init__(self, kafka: KafkaSettings, publisher: Publisher) -> None:
        self._kafka = kafka
        self._publisher = publisher
        self.topic = kafka.topics.name(Stream.PROCESS_MAP)

    async def read_current(self) -> ProcessMapV1 | None:
        """The last published map, None if none was; raises KafkaUnavailable or CorruptMapRecord."""
        last = (await read_table(self._kafka, self.topic)).get(MAP_KEY)
        if last is None:
            return None  # never published, or withdrawn (tombstone)
        try:
            return ProcessMapV1.model_validate_json(last)
        except ValidationError as exc:
            raise CorruptMapRecord(
                f"the last record of {self.topic} is not a valid ProcessMapV1 "
                f"(standard versions cannot be continued): {str(exc)[:500]}"
            ) from exc

    async def publish(self, pmap: ProcessMapV1) -> None:
        """Write the map as the table's current record and wait for acks=all."""
        await self._publisher.start(wait=True)
        value = pmap.model_dump_json(by_alias=True).encode()
        headers = [
            ("content-type", b"application/json"),
            ("baton_schema", b"ProcessMapV1"),
            ("baton_map_version", str(pmap.version).encode()),
        ]
        future = await self._publisher.send(self.topic, value, key=MAP_KEY, headers=headers)
        await wait_acks([future])
        log.info("published process map version %d to %s", pmap.version, self.topic)
