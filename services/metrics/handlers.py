"""metrics' use cases: events become staged effects; committed effects become exposed metrics;
table records become the catalog and the status board; consumed records become the history
of the report store.

Restart safety: the effects of a partition's records are staged under that partition (the
consumer passes it with every event), and applied to the exposed families only in
`after_commit(tp)`, i.e. once the consumer committed their offsets. A crash
before the commit loses only effects nobody saw, and the records replay after the restart; a
restart begins at 0 (a normal counter reset for Prometheus) from the committed offsets, so no
record is ever exposed twice. Gauges come from the tables, rebuilt from Kafka at every start.

The report store (`HistoryRecorder`) is fed separately, from positions it keeps itself: each
batch's rows and the positions after it are stored in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from pydantic import ValidationError

from metrics.domain.catalog import Catalog, Pair
from metrics.domain.effects import Effect, Unlabelable, announced_pair, effects_of
from metrics.domain.history import HistoryRow, StandardRow, history_row, standard_rows
from metrics.domain.pairs import PairMemory
from metrics.domain.status import StatusBoard
from shared.contracts import ProcessMapV1
from shared.events import Envelope, HandoffStatusV1, UnknownEventType
from shared.kafka import Outbound, Positions, ProcessedCounter, Received, Rejected, Source

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

    def preinitialise(self, catalog: Catalog) -> None:
        """Create every series of a catalog at 0."""
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
        self.process_map: ProcessMapV1 | None = None
        """The published map the catalog was built from (the review pages read its owners)."""
        self.catalog_loaded = asyncio.Event()
        self.map_listeners: list[Callable[[ProcessMapV1], None]] = []
        self._processed = processed
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
        self.staging.stage(source, envelope.event_id, effects)
        return ()

    def after_commit(self, source: Source) -> None:
        """The partition's offsets are committed: expose its effects."""
        for effect in self.staging.take(source):
            self.instruments.apply(effect)

    def revoked(self, sources: Iterable[Source]) -> None:
        """Partitions left this member: what they staged was never committed here."""
        self.staging.drop(sources)

    def on_process_map(self, key: bytes, value: bytes | None) -> None:
        """TableReader callback for `routing.processmap.v1`: a new catalog."""
        if value is None:
            log.warning("process map tombstone: keeping version %d", self.catalog.version)
            return
        try:
            process_map = ProcessMapV1.model_validate_json(value)
            catalog = Catalog.from_map(process_map)
        except ValidationError as exc:
            log.error("invalid process map record ignored: %s", str(exc)[:500])
            self._processed.inc(self._map_topic, "processmap", "invalid")
            return
        self.catalog = catalog
        self.process_map = process_map
        for listener in self.map_listeners:
            listener(process_map)
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


class HistoryStore(Protocol):
    """Where the history goes: the report store."""

    def positions(self) -> dict[tuple[str, int], int]:
        """The positions stored with the last batch."""
        ...

    def write(self, rows: Sequence[HistoryRow], positions: Positions) -> None:
        """Store rows and the positions after them in one transaction."""
        ...

    def put_standards(self, rows: Sequence[StandardRow]) -> None:
        """Remember the standard versions of a published map."""
        ...


class HistoryRecorder:
    """The report store's use case: consumed records become history rows, stored together with
    the positions after them; published maps become standard versions.

    Unreadable records (the Prometheus side dead-letters them) and records that add nothing
    (none today) are skipped, but their positions advance with the batch.
    """

    def __init__(self, store: HistoryStore, counted: Callable[[str, str, int], None]) -> None:
        self._store = store
        self._counted = counted
        self.positions: dict[tuple[str, int], int] = {}
        """The positions last stored (what was read up to)."""

    def resume(self) -> Positions:
        """Where reading resumes: the positions stored with the last batch."""
        self.positions = self._store.positions()
        return self.positions

    def rows_of(self, records: Sequence[Received]) -> tuple[list[HistoryRow], dict[str, int]]:
        """The rows of a batch, and how many records of each topic were invalid."""
        rows: list[HistoryRow] = []
        invalid: dict[str, int] = {}
        for record in records:
            try:
                row = history_row(Envelope.from_bytes(record.value), record.offset)
            except (ValidationError, UnknownEventType, ValueError):
                invalid[record.topic] = invalid.get(record.topic, 0) + 1
                continue
            if row is not None:
                rows.append(row)
        return rows, invalid

    def record(self, records: Sequence[Received]) -> None:
        """Store one batch (blocking: called on a worker thread)."""
        rows, invalid = self.rows_of(records)
        positions = dict(self.positions)
        for r in records:
            positions[(r.topic, r.partition)] = max(
                positions.get((r.topic, r.partition), 0), r.offset + 1
            )
        self._store.write(rows, positions)
        self.positions = positions
        stored: dict[str, int] = {}
        for r in records:
            stored[r.topic] = stored.get(r.topic, 0) + 1
        for topic, count in stored.items():
            self._counted(topic, "ok", count - invalid.get(topic, 0))
        for topic, count in invalid.items():
            self._counted(topic, "invalid", count)

    async def on_batch(self, records: list[Received]) -> None:
        """PositionedLog callback: store the batch off the event loop."""
        await asyncio.to_thread(self.record, records)

    def on_process_map(self, process_map: ProcessMapV1) -> None:
        """Remember the standard versions of a published map (a version is kept once)."""
        self._store.put_standards(standard_rows(process_map))
