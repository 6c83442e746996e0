"""One handoff as the sla service keeps it, and the reconciliation that yields its decisions.

A `Handoff` holds its facts (sorted, de-duplicated by event id), who handed what to whom under
which pinned standard, and marks of what was already emitted per clock. `reconcile` compares
the clocks as evaluated now with those marks and returns the decisions that make the emitted
stream true again:

- a new outcome is emitted once (`met` or `missed`);
- an emitted outcome that no longer holds is `retracted` first (revision + 1), then the true
  one is emitted, so "outcomes - retractions" always equals what in-order arrival gives;
- warnings are emitted once per threshold while the clock runs and is not yet decided;
- `stopped` is emitted once when the milestone is reached (with the durations to observe);
- `opened` once per cycle.
Decision ids derive from (handoff, cycle key, clock, kind, revision[, threshold]), so a
replay produces the same ids and can never be counted twice.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from enum import StrEnum

from shared.contracts import ClockName, Priority
from shared.events import Outcome
from sla.domain.clocks import ClockView, CycleView, Evaluation, Horizon
from sla.domain.facts import OPENED, Fact, FactType, pack, unpack

OPENING = (FactType.EXPECTED, FactType.SUBMITTED)


class DecisionKind(StrEnum):
    OPENED = "opened"
    WARNING = "warning"
    MET = "met"
    MISSED = "missed"
    RETRACTED = "retracted"
    STOPPED = "stopped"


@dataclass(slots=True)
class Mark:
    """What was emitted for one clock: its outcome, revision, warnings, stop.

    Created only once something is emitted, so a fresh handoff carries no marks at all.
    """

    outcome: Outcome | None = None
    revision: int = 0
    warned: int = 0
    """Bit i set: the warning at the standard's i-th threshold was emitted."""
    stopped: bool = False
    basis: tuple[int, Priority, int, int | None] | None = None
    """(cycle, priority, target, deadline) the outcome was decided on: enough to retract it
    even if a late event makes the clock disappear."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision to publish about one clock (or, for `opened`, one cycle)."""

    kind: DecisionKind
    at: int
    """The event time of the decision: deadline (missed), milestone (met, stopped),
    threshold instant (warning), cycle start (opened), evaluation instant (retracted)."""
    clock: ClockView | None = None
    cycle: CycleView | None = None
    revision: int = 0
    threshold: int | None = None
    retracted: Outcome | None = None
    reason: str = ""

    def id_parts(self, handoff_id: str) -> tuple[str, ...]:
        """What makes this decision unique: same parts after a replay, same event id."""
        if self.cycle is not None:
            return (handoff_id, self.cycle.key, self.kind.value)
        assert self.clock is not None
        parts = [handoff_id, self.clock.cycle_key, self.clock.name.value, self.kind.value]
        parts.append(str(self.revision))
        if self.threshold is not None:
            parts.append(str(self.threshold))
        return tuple(parts)


@dataclass(frozen=True, slots=True)
class Head:
    """Who hands what to whom, under which standard: one shared object per route and version
    (interned by the book), not one per handoff."""

    kind: str
    from_process: str
    to_process: str
    standard_key: str


@dataclass(frozen=True, slots=True)
class Opening:
    """What an opening event (expected, submitted) says about its handoff."""

    head: Head
    case_id: str
    priority: Priority
    due: int | None


class Handoff:
    """The state of one handoff: packed facts, its head, emitted marks, next wake-up.

    Kept small on purpose (a million open handoffs per instance): facts are one bytes object,
    the head is shared per route, marks exist only once something was emitted.
    """

    __slots__ = (
        "_facts",
        "case_id",
        "closed_seen",
        "due",
        "handoff_id",
        "head",
        "marks",
        "priority",
        "seen",
        "stream_wake",
        "unread",
        "waiting",
        "wake",
    )

    def __init__(self, handoff_id: str) -> None:
        self.handoff_id = handoff_id
        self.head: Head | None = None
        self.case_id = ""
        self.priority = Priority.P3
        self.due: int | None = None
        self._facts = b""
        self.marks: dict[tuple[str, ClockName], Mark] | None = None
        self.wake: int | None = None
        """The next wall-clock instant time alone changes something (live deadlines)."""
        self.stream_wake: int | None = None
        """The next stream-time instant something changes (deadlines that were history)."""
        self.seen: int | None = None
        """When sla learned of the handoff (wall clock): deadlines before it were history."""
        self.closed_seen: int | None = None
        """When sla learned the handoff was closed (wall clock): retention counts from it."""
        self.waiting: list[tuple[int, bytes]] | None = None
        """(offset, record value) of the events kept while no opening event has come (an
        orphan): dead-lettered as they came if none comes, dropped once one does."""
        self.unread: bytes | None = None
        """The changelog record a restored handoff has not been read from yet (see
        `unread_record`); None once read, and for every handoff that was not restored."""

    def read_back(
        self,
        *,
        head: Head | None,
        case_id: str,
        priority: Priority,
        due: int | None,
        packed: bytes,
        marks: dict[tuple[str, ClockName], Mark] | None,
        seen: int | None,
        closed_seen: int | None,
        waiting: list[tuple[int, bytes]] | None,
    ) -> None:
        """Set what an unread handoff's changelog record holds (see `unread_record`), every
        field once; the wake-ups were set at the restore and are left as they are now."""
        self.head = head
        self.case_id = case_id
        self.priority = priority
        self.due = due
        self._facts = packed
        self.marks = marks
        self.seen = seen
        self.closed_seen = closed_seen
        self.waiting = waiting
        self.unread = None

    @classmethod
    def unread_record(
        cls, handoff_id: str, record: bytes, wake: int | None, stream_wake: int | None
    ) -> Handoff:
        """A handoff restored from its changelog record but not read yet: only its id and
        wake-ups are set (the timers need them), every other field is unset until the book
        reads the record on the handoff's first use (`Book.read`). A restore is then as fast
        as the changelog can be read, and a handoff that is never touched before its next
        wake-up costs nothing more."""
        handoff = cls.__new__(cls)
        handoff.handoff_id = handoff_id
        handoff.wake = wake
        handoff.stream_wake = stream_wake
        handoff.unread = record
        return handoff

    @property
    def facts(self) -> list[Fact]:
        """The facts, sorted by (time, rank, id)."""
        return [fact for fact, _ in unpack(self._facts)]

    @property
    def packed(self) -> bytes:
        """The facts as stored (for the changelog)."""
        return self._facts

    def saved(self) -> tuple[bytes, Head | None, str, Priority, int | None]:
        """What `add` may change, to put back with `put_back` if the result is unusable."""
        return self._facts, self.head, self.case_id, self.priority, self.due

    def put_back(self, saved: tuple[bytes, Head | None, str, Priority, int | None]) -> None:
        """Undo `add` (see `saved`)."""
        self._facts, self.head, self.case_id, self.priority, self.due = saved

    def _open(self, opening: Opening) -> None:
        self.head = opening.head
        self.case_id = opening.case_id
        self.priority = opening.priority
        self.due = opening.due

    def add(self, fact: Fact, opening: Opening | None = None) -> bool:
        """Record a fact (False if its event id was seen: a duplicate changes nothing).

        An opening fact earlier than every opening fact so far sets the head: the handoff
        keeps the standard it *started* with, whatever the arrival order.
        """
        records = unpack(self._facts)
        if any(f.event_id == fact.event_id for f, _ in records):
            return False
        earliest = min((f for f, _ in records if f.type in OPENING), default=None)
        bisect.insort(records, (fact, 0))
        self._facts = pack(records)
        if opening is not None and (earliest is None or fact < earliest):
            self._open(opening)
        return True

    def opened(self) -> set[str]:
        """Keys of the cycles whose `opened` decision was emitted."""
        return {f.event_id for f, flags in unpack(self._facts) if flags & OPENED}

    def mark_opened(self, cycle_keys: set[str]) -> None:
        """Remember that the `opened` decisions of these cycles were emitted."""
        self._facts = pack(
            [
                (f, flags | OPENED if f.event_id in cycle_keys else flags)
                for f, flags in unpack(self._facts)
            ]
        )

    def reconcile(self, evaluation: Evaluation) -> list[Decision]:
        """The decisions that bring what was emitted in line with `evaluation`."""
        out: list[Decision] = []
        opened = self.opened()
        new = {c.key for c in evaluation.cycles} - opened
        if new:
            out.extend(
                Decision(DecisionKind.OPENED, c.start, cycle=c)
                for c in evaluation.cycles
                if c.key in new
            )
            self.mark_opened(new)
        now = evaluation.now
        # Pass 1: withdraw every emitted outcome that no longer holds, before anything new is
        # emitted -- a consumer netting by (cycle, clock) must see the old one go first.
        current = {clock.key: clock for clock in evaluation.clocks}
        marks = self.marks or {}
        for key, mark in marks.items():
            if mark.outcome is None or mark.basis is None:
                continue
            clock = current.get(key)
            if clock is None:
                reason = "a late event removed this clock (its cycle or its target)"
            elif mark.basis[0] != clock.cycle:
                reason = "a late event renumbered the cycles"
            elif mark.outcome is not clock.outcome:
                reason = _why(mark.outcome, clock)
            else:
                continue
            out.append(_retraction(key, mark, now, reason))
            mark.outcome = None
            mark.revision += 1
        # Pass 2: warnings, new outcomes and stops.
        for clock in evaluation.clocks:
            mark = marks.get(clock.key) or Mark()
            before = len(out)
            self._emit(clock, mark, evaluation.horizon, out)
            if len(out) > before and clock.key not in marks:
                if self.marks is None:
                    self.marks = marks
                marks[clock.key] = mark
        return out

    @staticmethod
    def _emit(clock: ClockView, mark: Mark, horizon: Horizon, out: list[Decision]) -> None:
        if mark.outcome is None and clock.outcome is None and clock.running:
            for index, (pct, instant) in enumerate(clock.thresholds):
                if instant is not None and horizon.passed(instant) and not mark.warned >> index & 1:
                    mark.warned |= 1 << index
                    out.append(Decision(DecisionKind.WARNING, instant, clock, threshold=pct))
        if mark.outcome is None and clock.outcome is not None:
            mark.outcome = clock.outcome
            mark.basis = (clock.cycle, clock.priority, clock.target, clock.deadline)
            at = clock.stop if clock.outcome is Outcome.MET else clock.deadline
            assert at is not None
            kind = DecisionKind.MET if clock.outcome is Outcome.MET else DecisionKind.MISSED
            out.append(Decision(kind, at, clock, revision=mark.revision))
        if clock.stop is not None and not mark.stopped:
            mark.stopped = True
            out.append(Decision(DecisionKind.STOPPED, clock.stop, clock, revision=mark.revision))

    def next_wake(self, evaluation: Evaluation) -> tuple[int | None, int | None]:
        """The next instants time alone changes a decision (a threshold, a deadline): the
        first one sla learned of in advance (wall clock), and the first one that was already
        history when it learned of it (stream time)."""
        wall: int | None = None
        stream: int | None = None
        horizon = evaluation.horizon
        marks = self.marks or {}
        for clock in evaluation.clocks:
            mark = marks.get(clock.key)
            warned = mark.warned if mark is not None else 0
            if not clock.running or (mark is not None and mark.outcome is not None):
                continue
            instants = [
                instant
                for index, (_, instant) in enumerate(clock.thresholds)
                if instant is not None and not warned >> index & 1
            ]
            if clock.deadline is not None:
                instants.append(clock.deadline + 1)  # missed means past the deadline
            for instant in instants:
                if horizon.live(instant):
                    wall = instant if wall is None else min(wall, instant)
                else:
                    stream = instant if stream is None else min(stream, instant)
        return wall, stream


def _retraction(key: tuple[str, ClockName], mark: Mark, now: int, reason: str) -> Decision:
    """Withdraw an emitted outcome exactly as it was emitted: same cycle number, priority,
    target and deadline, so whoever counted it can un-count it under the same labels."""
    assert mark.outcome is not None and mark.basis is not None
    cycle, priority, target, deadline = mark.basis
    emitted = ClockView(
        name=key[1],
        cycle_key=key[0],
        cycle=cycle,
        priority=priority,
        start=0,
        target=target,
        deadline=deadline,
        stop=None,
        void_at=None,
        paused_now=False,
        elapsed_wall=0,
        thresholds=(),
        outcome=mark.outcome,
    )
    return Decision(
        DecisionKind.RETRACTED,
        now,
        emitted,
        revision=mark.revision,
        retracted=mark.outcome,
        reason=reason,
    )


def _why(previous: Outcome, clock: ClockView) -> str:
    if clock.outcome is Outcome.MET:
        return "a late event shows the milestone was reached in time"
    if clock.outcome is Outcome.MISSED:
        return "a late event shows the deadline was missed"
    if previous is Outcome.MISSED and clock.deadline is None:
        return "a late pause stopped the clock before its deadline"
    if previous is Outcome.MISSED and clock.void_at is not None:
        return "the clock was stopped (rejected or cancelled) before its deadline"
    return "a late event moved the deadline"
