"""metrics' use cases: events become staged effects; committed effects become exposed metrics;
table records become the catalog and the status board.

Restart safety: the effects of a partition's records are staged under that partition (the
consumer passes it with every event), and applied to the exposed families only in
`after_commit(tp)`, i.e. once the consumer committed their offsets. A crash
before the commit loses only effects nobody saw, and the records replay after the restart; a
restart begins at 0 (a normal counter reset for Prometheus) from the committed offsets, so no
record is ever exposed twice. Gauges come from the tables, rebuilt from Kafka at every start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydantic import ValidationError

from metrics.domain.catalog import Catalog, Pair
from metrics.domain.effects import Effect, Unlabelable, announced_pair, effects_of
from metrics.domain.pairs import PairMemory
from metrics.domain.status import StatusBoard
from shared.events import Envelope, HandoffStatusV1
from shared.kafka import Outbound, ProcessedCounter, Rejected, Source
from shared.mapwire import CURRENT_KEY, CorruptMap, MapAssembler

log = logging.getLogger(__name__)


class Staging:
    """Effects of handled events, per partition and event id, until that partition commits."""

    def __init__(self) -> None:
        self._pending: dict[Source, dict[str, list[Effect]]] = {}

    def stage(self, source: Source, event_id: str, effects: Sequence[Effect]) -> None:
        """Hold an event's effects (a repeat of the same event id replaces, never adds)."""
        self._pending.setdefault((source[0], source[1]), {})[event_id] = list(effects)

    def take(self, source: Source) -> list[Effect]:
        """Every effect staged for a partition whose offsets were just committed."""
        staged = self._pending.pop((source[0], source[1]), None)
        if not staged:
            return []
        return [effect for effects in staged.values() for effect in effects]

    def drop(self, sources: Iterable[Source]) -> None:
        """Forget what partitions leaving this member staged: whatever is still staged when
        a partition is revoked failed to commit, and its records replay on the new owner."""
        for source in sources:
            dropped = self._pending.pop((source[0], source[1]), None)
            if dropped:
                log.warning("dropping %d uncommitted events of revoked %s", len(dropped), source)

    def pending(self) -> int:
        """Events handled but not committed yet."""
        return sum(len(events) for events in self._pending.values())


class Exposed(Protocol):
    """Where committed effects go: the exposed metric families."""

    def apply(self, effect: Effect) -> None:
        """Expose one committed effect."""
        ...

    def preinitialise(self, catalog: Catalog, pairs: Sequence[Pair] | None = None) -> None:
        """Create every series of a catalog (of the given pairs only, if any) at 0."""
        ...


class MetricsService:
    """Turns decisions, lifecycle events and table records into metrics."""

    def __init__(
        self,
        instruments: Exposed,
        board: StatusBoard,
        pairs: PairMemory,
        staging: Staging,
        processed: ProcessedCounter,
        *,
        map_topic: str,
        status_topic: str,
    ) -> None:
        self.instruments = instruments
        self.board = board
        self.pairs = pairs
        self.staging = staging
        self.catalog = Catalog.empty()
        self.catalog_loaded = asyncio.Event()
        self._processed = processed
        self._assembler = MapAssembler()
        self._implied: set[Pair] = set()
        self._map_topic = map_topic
        self._status_topic = status_topic

    def pair_of(self, handoff_id: str) -> Pair | None:
        """The (from, to) of a handoff: the status table first, then what events said."""
        return self.board.pair_of(handoff_id) or self.pairs.get(handoff_id)

    async def handle(self, envelope: Envelope, source: Source) -> Sequence[Outbound]:
        """One consumed event from partition `source`: stage its effects until that partition
        commits; an unlabelable event is rejected (dead-lettered and counted as invalid),
        never turned into a label."""
        pair = announced_pair(envelope)
        if pair is not None:
            self.pairs.remember(envelope.key, pair)
        try:
            effects = effects_of(envelope, self.catalog, self.pair_of)
        except Unlabelable as exc:
            raise Rejected(exc.code, str(exc)) from exc
        if effects:
            self._seen(effect.labels[:2] for effect in effects)  # every family starts (f, t)
        self.staging.stage(source, envelope.event_id, effects)
        return ()

    def _seen(self, pairs: Iterable[tuple[str, ...]]) -> None:
        """Pairs that showed up: an implied one (carried by a default route) joins the
        catalog, its series pre-initialised, its targets and objective exposed."""
        known = self.catalog
        fresh = [
            (p[0], p[1])
            for p in pairs
            if len(p) == 2 and p[0] != p[1] and known.implies(p[0], p[1])
        ]
        if not fresh:
            return
        grown = known.with_pairs(fresh)
        if grown is not known:
            added = grown.pairs[len(known.pairs) :]
            self.catalog = grown
            self._implied.update(added)
            self.instruments.preinitialise(grown, added)

    def after_commit(self, source: Source) -> None:
        """The partition's offsets are committed: expose its effects."""
        for effect in self.staging.take(source):
            self.instruments.apply(effect)

    def revoked(self, sources: Iterable[Source]) -> None:
        """Partitions left this member: what they staged was never committed here."""
        self.staging.drop(sources)

    def on_process_map(self, key: bytes, value: bytes | None) -> None:
        """TableReader callback for `routing.processmap.v1`: a part is held, a manifest
        (`current`) assembles the map in force and makes it the catalog (shared.mapwire)."""
        if key == CURRENT_KEY and value is None:
            log.warning("process map tombstone: keeping version %d", self.catalog.version)
            return
        try:
            pmap = self._assembler.feed(key, value)
        except CorruptMap as exc:
            log.error("invalid process map record ignored: %s", str(exc)[:500])
            self._processed.inc(self._map_topic, "processmap", "invalid")
            return
        if pmap is None:
            return
        # Implied pairs seen under the previous map stay, as long as this one still routes them.
        catalog = Catalog.from_map(pmap).with_pairs(self._implied)
        self._implied = {p for p in self._implied if p in set(catalog.pairs)}
        self.catalog = catalog
        self.instruments.preinitialise(catalog)
        self.catalog_loaded.set()
        log.info("process map version %d: %d pairs", catalog.version, len(catalog.pairs))

    def on_status(self, key: bytes, value: bytes | None) -> None:
        """TableReader callback for `sla.status.v1`: one handoff's status (None = forgotten)."""
        handoff_id = key.decode(errors="replace")
        if value is None:
            self.board.put(handoff_id, None)
            return
        try:
            status = HandoffStatusV1.model_validate_json(value)
        except ValidationError as exc:
            # Forget what we had: an unreadable row must not leave a stale one counted.
            log.warning("invalid status record for %r dropped: %s", handoff_id, str(exc)[:300])
            self._processed.inc(self._status_topic, "sla.status", "invalid")
            self.board.put(handoff_id, None)
            return
        self.board.put(handoff_id, status)
        self._seen([(status.from_process, status.to_process)])
