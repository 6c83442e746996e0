"""metrics' use cases: events become staged pair tallies; committed tallies become exposed
metrics; table records become the catalog and the status board.

Exactly-once totals: the consumer (shared/transactional.py) hands every event of a fetch to
`handle`, which applies its effects to a copy of the pair's tally (`domain/tally.py`); then
`prepare` gives the changed tallies as changelog records, which the consumer writes in ONE
Kafka transaction with the fetch's offsets; `committed` makes them the exposed values. So the
exposed totals are always a function of the committed log: a crash anywhere loses nothing
that was exposed and exposes nothing twice, and a restart `restore`s the tallies from the
changelog and continues them (no counter reset). Gauges come from the tables, rebuilt from
Kafka at every start.

Sharding: this instance keeps only the pairs its `Shard` owns -- their tallies, status rows
and catalog gauges -- so N instances expose each series once. Every instance reads every event
(a pair's handoffs are spread over all partitions) and ignores other shards' pairs; an
unlabelable event is dead-lettered by the shard that owns its pair (shard 0 if none is known).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from pydantic import ValidationError

from metrics.domain.catalog import Catalog, Pair
from metrics.domain.effects import Effect, Unlabelable, announced_pair, effects_of
from metrics.domain.pairs import PairMemory
from metrics.domain.shards import Shard
from metrics.domain.status import StatusBoard
from metrics.domain.tally import CorruptTally, PairTally, changelog_key, pair_of_key
from shared.events import Envelope, HandoffStatusV1
from shared.kafka import ProcessedCounter, Record, Rejected, Source
from shared.mapwire import CURRENT_KEY, CorruptMap, MapAssembler

log = logging.getLogger(__name__)


class Exposed(Protocol):
    """Where committed tallies go: the exposed metric families."""

    def load(self, tally: PairTally) -> None:
        """Expose every value of a pair's tally."""
        ...

    def exemplify(self, effects: Iterable[Effect]) -> None:
        """Show committed observations as exemplars."""
        ...


class MetricsService:
    """Turns decisions, lifecycle events and table records into metrics."""

    def __init__(
        self,
        instruments: Exposed,
        board: StatusBoard,
        pairs: PairMemory,
        processed: ProcessedCounter,
        *,
        shard: Shard,
        changelog_topic: str,
        map_topic: str,
        status_topic: str,
    ) -> None:
        self.instruments = instruments
        self.board = board
        self.pairs = pairs
        self.shard = shard
        self.catalog = Catalog.empty()
        self.catalog_loaded = asyncio.Event()
        self.tallies: dict[Pair, PairTally] = {}
        """Committed totals of this shard's pairs (what is exposed)."""
        self._staged: dict[Pair, PairTally] = {}
        self._exemplars: list[Effect] = []
        self._processed = processed
        self._assembler = MapAssembler()
        self._implied: set[Pair] = set()
        self._changelog = changelog_topic
        self._map_topic = map_topic
        self._status_topic = status_topic

    def pair_of(self, handoff_id: str) -> Pair | None:
        """The (from, to) of a handoff: the status table first, then what events said."""
        return self.board.pair_of(handoff_id) or self.pairs.get(handoff_id)

    # ------------------------------------------------------------------ events

    def handle(self, envelope: Envelope, source: Source) -> None:
        """Stage one consumed event's effects on this shard's pairs; an unlabelable event is
        rejected (dead-lettered and counted as invalid) by its pair's shard, never turned
        into a label."""
        pair = announced_pair(envelope)
        if pair is not None:
            self.pairs.remember(envelope.key, pair)
        try:
            effects = effects_of(envelope, self.catalog, self.pair_of)
        except Unlabelable as exc:
            who = pair or self.pair_of(envelope.key)
            if self.shard.owns(who) if who is not None else self.shard.index == 0:
                raise Rejected(exc.code, str(exc)) from exc
            return
        owns = self.shard.owns
        mine = [e for e in effects if owns((e.labels[0], e.labels[1]))]
        if not mine:
            return
        self._seen((e.labels[0], e.labels[1]) for e in mine)
        for effect in mine:
            key = (effect.labels[0], effect.labels[1])
            tally = self._staged.get(key)
            if tally is None:
                committed = self.tallies.get(key)
                tally = committed.copy() if committed is not None else PairTally(key)
                self._staged[key] = tally
            tally.apply(effect)
            if effect.exemplar is not None:
                self._exemplars.append(effect)

    def prepare(self) -> Sequence[Record]:
        """The changelog records of every pair changed since the last commit."""
        name = self.shard.name
        return [
            (self._changelog, tally.encode(), changelog_key(name, pair), [], None)
            for pair, tally in self._staged.items()
        ]

    def committed(self) -> None:
        """The staged tallies and the offsets are committed: expose them."""
        for pair, tally in self._staged.items():
            self.tallies[pair] = tally
            self.instruments.load(tally)
        self.instruments.exemplify(self._exemplars)
        self._staged = {}
        self._exemplars = []

    def aborted(self) -> None:
        """The transaction failed: its events come again from the committed offsets."""
        if self._staged:
            log.warning("dropping the staged tallies of %d pairs", len(self._staged))
        self._staged = {}
        self._exemplars = []

    def restore(self, changelog: Mapping[bytes, bytes | None]) -> None:
        """Rebuild this shard's committed tallies from its changelog (read to its end)."""
        name, owns = self.shard.name, self.shard.owns
        for key, value in changelog.items():
            pair = pair_of_key(name, key)
            if pair is None or value is None or not owns(pair):
                continue
            try:
                tally = PairTally.decode(pair, value)
            except CorruptTally as exc:
                log.error("changelog record of %s unreadable, its totals restart: %s", pair, exc)
                self._processed.inc(self._changelog, "metrics.state", "invalid")
                continue
            self.tallies[pair] = tally
            self.instruments.load(tally)
        log.info("restored the totals of %d pairs (shard %s)", len(self.tallies), name)

    def _seen(self, pairs: Iterable[Pair]) -> None:
        """Pairs that showed up: an implied one (carried by a default route) joins the
        catalog, its targets and objective exposed."""
        known = self.catalog
        fresh = [p for p in pairs if p[0] != p[1] and known.implies(p[0], p[1])]
        if not fresh:
            return
        grown = known.with_pairs(fresh)
        if grown is not known:
            self.catalog = grown
            self._implied.update(grown.pairs[len(known.pairs) :])

    # ------------------------------------------------------------------ tables

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
        pair = (status.from_process, status.to_process)
        if not self.shard.owns(pair):
            # Another shard's row: only its pair is kept, to label this handoff's rework.
            self.board.put(handoff_id, None)
            self.pairs.remember(handoff_id, pair)
            return
        self.board.put(handoff_id, status)
        self._seen([pair])
