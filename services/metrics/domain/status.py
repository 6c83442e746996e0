"""The materialised status table, aggregated for scrape-time gauges.

Each row of `sla.status.v1` is indexed once, when it changes: its handoff counts as open for
its (pair, priority), and each running or paused clock adds its deadline to a sorted list of
its (pair, priority, milestone). A scrape then costs one bisect per label set, whatever the
number of handoffs: "overdue now" depends on the scrape's `now`, so it cannot be a stored count,
but "deadlines before now" in a sorted list is exactly a bisect.

Definitions (documented for ops teams):
- open: the handoff's state is `open` -- delivered to the receiving team and neither completed,
  cancelled nor returned to the supplier (a returned handoff is back with the supplier; an
  expected one was not delivered yet).
- overdue: a clock whose stage is running or paused and whose outcome is `missed`, or whose
  outcome is still undecided and whose deadline is before now. A clock already `met` is never
  overdue.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from metrics.domain.catalog import Catalog, Combo, Pair, PairPriority
from shared.events import ClockStage, HandoffState, HandoffStatusV1, Outcome

K = TypeVar("K", bound=tuple[str, ...])
_ACTIVE = frozenset({ClockStage.RUNNING, ClockStage.PAUSED})


@dataclass(slots=True)
class _Deadlines:
    """The active clocks of one label set."""

    pending: list[float] = field(default_factory=list)
    """Sorted deadlines (Unix seconds) of clocks with no outcome yet."""
    missed: list[float] = field(default_factory=list)
    """Sorted deadlines of clocks already missed (overdue whatever the time)."""
    missed_undated: int = 0
    """Missed clocks without a deadline (counted, but no timestamp to report)."""

    def add(self, missed: bool, deadline: float | None) -> None:
        if missed:
            if deadline is None:
                self.missed_undated += 1
            else:
                bisect.insort(self.missed, deadline)
        elif deadline is not None:
            bisect.insort(self.pending, deadline)

    def remove(self, missed: bool, deadline: float | None) -> None:
        if missed:
            if deadline is None:
                self.missed_undated -= 1
            else:
                _discard(self.missed, deadline)
        elif deadline is not None:
            _discard(self.pending, deadline)

    def overdue(self, now: float) -> tuple[int, float | None]:
        due = bisect.bisect_left(self.pending, now)  # deadlines strictly before now
        count = due + len(self.missed) + self.missed_undated
        oldest: float | None = None
        if due:
            oldest = self.pending[0]
        if self.missed and (oldest is None or self.missed[0] < oldest):
            oldest = self.missed[0]
        return count, oldest


def _discard(values: list[float], value: float) -> None:
    i = bisect.bisect_left(values, value)
    if i < len(values) and values[i] == value:
        del values[i]


ClockEntry = tuple[Combo, bool, float | None]
"""(label set, missed?, deadline) of one active clock of a handoff."""


_Row = tuple[Pair, PairPriority | None, tuple[ClockEntry, ...]]
"""(pair, open key, active clocks) of one handoff. A plain tuple of strings, floats and tuples
on purpose: CPython stops tracking such tuples in its cyclic GC, so a million rows add nothing
to a full collection's pause (a dataclass row would be scanned on every one)."""


def index_row(status: HandoffStatusV1) -> tuple[Pair, PairPriority | None, list[ClockEntry]]:
    """What one status row contributes: its pair, its open key, its active clocks."""
    f, t, p = status.from_process, status.to_process, status.priority.value
    open_key = (f, t, p) if status.state is HandoffState.OPEN else None
    clocks: list[ClockEntry] = []
    for clock in status.clocks:
        if clock.stage not in _ACTIVE or clock.outcome is Outcome.MET:
            continue
        deadline = clock.deadline.timestamp() if clock.deadline is not None else None
        clocks.append(((f, t, p, clock.clock.value), clock.outcome is Outcome.MISSED, deadline))
    return (f, t), open_key, clocks


class StatusBoard:
    """Every handoff's current status, with per-label-set aggregates kept up to date."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._open: dict[PairPriority, int] = {}
        self._clocks: dict[Combo, _Deadlines] = {}
        self._interned: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.keys_version = 0
        """Bumped whenever a label set appears, so views can cache their key lists."""

    def __len__(self) -> int:
        return len(self._rows)

    def _intern(self, key: K) -> K:
        # Millions of rows share a few thousand label sets: keep one tuple of each.
        return self._interned.setdefault(key, key)  # type: ignore[return-value]

    def put(self, handoff_id: str, status: HandoffStatusV1 | None) -> None:
        """Replace a handoff's row (None = tombstone: the handoff is forgotten)."""
        old = self._rows.pop(handoff_id, None)
        if old is not None:
            self._retract(old)
        if status is None:
            return
        pair, open_key, clocks = index_row(status)
        intern = self._intern
        row: _Row = (
            intern(pair),
            intern(open_key) if open_key else None,
            tuple((intern(k), m, d) for k, m, d in clocks),
        )
        self._rows[handoff_id] = row
        open_key = row[1]
        if open_key is not None:
            if open_key not in self._open:
                self.keys_version += 1
                self._open[open_key] = 0
            self._open[open_key] += 1
        for key, missed, deadline in row[2]:
            slot = self._clocks.get(key)
            if slot is None:
                self.keys_version += 1
                slot = self._clocks[key] = _Deadlines()
            slot.add(missed, deadline)

    def _retract(self, row: _Row) -> None:
        if row[1] is not None:
            self._open[row[1]] -= 1
        for key, missed, deadline in row[2]:
            self._clocks[key].remove(missed, deadline)

    def pair_of(self, handoff_id: str) -> Pair | None:
        """The (from, to) of a handoff in the table, or None."""
        row = self._rows.get(handoff_id)
        return row[0] if row is not None else None

    def open_count(self, key: PairPriority) -> int:
        """Open handoffs of a (pair, priority)."""
        return self._open.get(key, 0)

    def overdue(self, key: Combo, now: float) -> tuple[int, float | None]:
        """(overdue clocks, oldest overdue deadline or None) of a label set at `now`."""
        slot = self._clocks.get(key)
        return slot.overdue(now) if slot is not None else (0, None)

    def open_keys(self) -> Iterator[PairPriority]:
        """Every (pair, priority) that ever had an open handoff in this lifetime."""
        return iter(self._open)

    def clock_keys(self) -> Iterator[Combo]:
        """Every label set that ever had an active clock in this lifetime."""
        return iter(self._clocks)


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The scrape-time gauges: open items, overdue items and oldest overdue deadlines."""

    open_items: list[tuple[PairPriority, int]]
    overdue_items: list[tuple[Combo, int]]
    oldest_overdue: list[tuple[Combo, float]]


class StateView:
    """Reads the board for a scrape: the label sets the board has whose processes the catalog
    knows (unknown ones are skipped). Nothing is pre-created: open items show for the (pair,
    priority) keys that had an open handoff in this lifetime (0 once none is left), overdue
    items and the oldest overdue deadline only while something is overdue."""

    def __init__(self, board: StatusBoard) -> None:
        self._board = board
        self._catalog: Catalog | None = None
        self._keys_version = -1
        self._open_keys: tuple[PairPriority, ...] = ()
        self._clock_keys: tuple[Combo, ...] = ()

    def _keys(self, catalog: Catalog) -> None:
        if catalog is self._catalog and self._board.keys_version == self._keys_version:
            return
        board = self._board
        self._open_keys = tuple(k for k in board.open_keys() if catalog.knows(k[0], k[1]))
        self._clock_keys = tuple(k for k in board.clock_keys() if catalog.knows(k[0], k[1]))
        self._catalog = catalog
        self._keys_version = board.keys_version

    def snapshot(self, catalog: Catalog, now: float) -> StateSnapshot:
        """The gauges at `now` (Unix seconds), labelled from `catalog` only."""
        self._keys(catalog)
        board = self._board
        overdue: list[tuple[Combo, int]] = []
        oldest: list[tuple[Combo, float]] = []
        for key in self._clock_keys:
            count, first = board.overdue(key, now)
            if count:
                overdue.append((key, count))
            if first is not None:
                oldest.append((key, first))
        return StateSnapshot(
            open_items=[(k, board.open_count(k)) for k in self._open_keys],
            overdue_items=overdue,
            oldest_overdue=oldest,
        )
