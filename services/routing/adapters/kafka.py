"""The process-map topic (`routing.processmap.v1`): read what was published, publish a version.

Delivery semantics: the map is table records, not events (shared.mapwire: a version's
compressed parts, its manifest, then `current`, all on the compacted single-partition topic,
so the topic's `current` is the map in force and every version stays readable). Reading is a
plain read-to-end from the beginning (shared read_table: no consumer group,
read_committed), at start-up, on a reload and for the history. Publishing writes the records
in order and waits for acks=all of every one. Last writer wins: two instances started with
the same file compute the same versions, so a race between them publishes the same content
twice.
"""

from __future__ import annotations

import logging

from shared.contracts import MapChangesV1, MapManifestV1, ProcessMapV1
from shared.kafka import Publisher, read_table
from shared.mapwire import PART_BYTES, CorruptMap, current_map, encode_map, manifests
from shared.settings import KafkaSettings
from shared.topics import Stream

log = logging.getLogger(__name__)


class CorruptMapRecord(RuntimeError):
    """The map in force on the topic cannot be read back: versions cannot be continued."""


class MapTopic:
    """Reads and writes the published process map."""

    def __init__(
        self, kafka: KafkaSettings, publisher: Publisher, part_bytes: int = PART_BYTES
    ) -> None:
        self._kafka = kafka
        self._publisher = publisher
        self._part_bytes = part_bytes
        self.topic = kafka.topics.name(Stream.PROCESS_MAP)

    async def _table(self) -> dict[bytes, bytes | None]:
        return await read_table(self._kafka, self.topic)

    async def read_current(self) -> ProcessMapV1 | None:
        """The last published map, None if none was; raises KafkaUnavailable or CorruptMapRecord."""
        try:
            return current_map(await self._table())
        except CorruptMap as exc:
            raise CorruptMapRecord(
                f"the map in force on {self.topic} cannot be read back "
                f"(standard versions cannot be continued): {exc}"
            ) from exc

    async def read_history(self) -> tuple[list[MapManifestV1], dict[bytes, bytes | None]]:
        """Every version's manifest, oldest first, and the table they were read from (so a
        version's map can be assembled from it); raises KafkaUnavailable."""
        table = await self._table()
        return manifests(table), table

    def encode(self, pmap: ProcessMapV1, changes: MapChangesV1 | None = None) -> MapManifestV1:
        """The manifest `pmap` would be published under; raises MapTooLarge."""
        return encode_map(pmap, changes, self._part_bytes)[0]

    async def publish(self, pmap: ProcessMapV1, changes: MapChangesV1 | None = None) -> None:
        """Write the map's parts, its manifest and `current`, in order, and wait for acks=all
        of every one; raises MapTooLarge (nothing is sent) or KafkaUnavailable."""
        manifest, records = encode_map(pmap, changes, self._part_bytes)
        await self._publisher.start(wait=True)
        await self._publisher.write(
            [(self.topic, r.value, r.key, list(r.headers), None) for r in records]
        )
        log.info(
            "published process map version %d to %s: %d routes, %d bytes of JSON in %d "
            "part(s), %d bytes compressed",
            pmap.version,
            self.topic,
            manifest.routes,
            manifest.size,
            manifest.parts,
            manifest.compressed,
        )
