"""What routing's API reads: the map in force, its catalog, a preview of a posted map, and the
history of published versions.

The API reads through here and never reaches into the consumer or the adapters itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from routing.adapters.mapfile import parse_map_text
from routing.domain.catalog import Catalog
from routing.domain.history import RouteHistory
from routing.domain.outbox import Finished, Outbox, Pending
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Versioned, next_map
from routing.handlers import MapState
from shared.contracts import MapManifestV1, ProcessMapV1, holidays_data_version
from shared.heap import gc_paused
from shared.mapwire import CorruptMap, assemble_json, parts_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    """A posted map, checked, with the versions its standards would get."""

    draft: ProcessMapDraft
    versioned: Versioned
    compared_with: ProcessMapV1 | None


class HistorySource(Protocol):
    """Where past versions are read from (the map topic)."""

    async def read_history(self) -> tuple[list[MapManifestV1], dict[bytes, bytes | None]]:
        """Every version's manifest, oldest first, and the records they were read from."""
        ...


@dataclass(frozen=True)
class History:
    """The published versions, and every route's eras across them."""

    manifests: tuple[MapManifestV1, ...]
    routes: RouteHistory


def build_history(manifests: list[MapManifestV1], table: Mapping[bytes, bytes | None]) -> History:
    """Read every version's routes, oldest first (a version whose parts cannot be read back
    is left out and logged)."""
    routes = RouteHistory()
    with gc_paused():
        for manifest in manifests:
            try:
                text = assemble_json(manifest, parts_of(table, manifest.version))
            except CorruptMap as exc:
                log.warning("history: version %d left out: %s", manifest.version, exc)
                continue
            routes.add(manifest, orjson.loads(text)["routes"])
    return History(tuple(manifests), routes)


class MapQueries:
    """Read access to the process map this instance applies, and to the published history."""

    def __init__(self, state: MapState, history: HistorySource | None = None) -> None:
        self._state = state
        self._source = history
        self._history: History | None = None
        self._read_at = -1  # the version in force when the history was read
        self._building = asyncio.Lock()

    @property
    def current(self) -> ProcessMapV1 | None:
        """The map in force (None until it is versioned and published)."""
        return self._state.current

    @property
    def catalog(self) -> Catalog | None:
        """The catalog of the map in force (None until then)."""
        return self._state.catalog

    def preview(self, text: str, now: datetime) -> Preview:
        """Check a map given as YAML text against the one in force; raises InvalidProcessMap
        listing every error."""
        draft = parse_map_text(text, checked_at=now)
        current = self._state.current
        return Preview(
            draft,
            next_map(
                draft,
                current,
                now=now,
                source="validate",
                holidays_version=holidays_data_version(),
            ),
            current,
        )

    async def history(self) -> History:
        """Every published version and route era, read from Kafka once and again only after
        a newer version is in force (raises KafkaUnavailable)."""
        async with self._building:
            current = self._state.current
            newest = current.version if current is not None else 0
            if self._history is not None and self._read_at == newest:
                return self._history
            if self._source is None:
                return History((), RouteHistory())
            manifests, table = await self._source.read_history()
            # Decompressing and reading every version takes a while on large maps.
            self._history = await asyncio.to_thread(build_history, manifests, table)
            self._read_at = newest
            return self._history


class OutboxQueries:
    """Read access to the outbox partitions this instance owns (None: notifications off)."""

    def __init__(self, outbox: Outbox | None) -> None:
        self._outbox = outbox

    @property
    def enabled(self) -> bool:
        """False when ROUTING_NOTIFICATIONS is off."""
        return self._outbox is not None

    def partitions(self) -> dict[int, bool]:
        """The outbox partitions owned here, each with whether it is restored."""
        return self._outbox.partitions() if self._outbox is not None else {}

    def pending(self, handoff_id: str | None = None) -> list[Pending]:
        """Pending notifications (of one handoff), soonest due first."""
        if self._outbox is None:
            return []
        items = [
            p
            for p in self._outbox.pending()
            if handoff_id is None or p.request.handoff_id == handoff_id
        ]
        return sorted(items, key=lambda p: (p.due, p.request.notification_id))

    def finished(self, handoff_id: str | None = None, limit: int = 100) -> list[Finished]:
        """Recently delivered or dead-lettered notifications (of one handoff), latest first."""
        if self._outbox is None:
            return []
        items = [
            f for f in self._outbox.recent() if handoff_id is None or f.handoff_id == handoff_id
        ]
        items.sort(key=lambda f: (f.at, f.notification_id), reverse=True)
        return items[:limit]

    def in_flight(self, notification_id: str) -> bool:
        """True while a POST of the notification is under way."""
        return self._outbox is not None and notification_id in self._outbox.in_flight
