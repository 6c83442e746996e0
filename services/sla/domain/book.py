"""The handoffs of one partition, their standards, its stream time, and two timers.

Pure: the caller passes `now` and publishes what comes back. Time-driven decisions come from
heaps of (wake-up, handoff id) -- the earliest instant at which time alone changes something
(a warning threshold, a deadline, the end of a closed handoff's retention) -- never from a
scan: one heap for the wall clock (what sla learned of in advance), one for the partition's
stream time, the latest event time it has seen (what was already history when sla learned of
it: decided in event-time order as the history is read, see `clocks.Horizon`). Stale heap
entries are skipped lazily and compacted now and then.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shared.calendar import BusinessCalendar, CalendarError, calendar_for
from shared.contracts import ServiceStandardV1
from sla.domain.clocks import EARLIEST, Evaluation, Horizon, evaluate
from sla.domain.facts import Fact
from sla.domain.handoff import Decision, Handoff, Head, Opening

NEVER = -(1 << 62)
"""Stream time before the first event."""
_UNPACKED = 20_000
"""Handoffs whose unpacked facts are kept between evaluations (a bound, not a cache policy:
the lot is dropped when full)."""


def standard_key(standard: ServiceStandardV1) -> str:
    """How a pinned standard is referred to: route id, version and a content fingerprint --
    two different standards published under one version (a misconfigured map, two maps on one
    cluster) must never be confused."""
    digest = hashlib.blake2b(standard.model_dump_json().encode(), digest_size=5).hexdigest()
    return f"{standard.route_id}@{standard.version}~{digest}"


@dataclass(frozen=True, slots=True)
class Incoming:
    """A lifecycle event as the clocks need it."""

    handoff_id: str
    fact: Fact
    opening: Opening | None = None
    standard: ServiceStandardV1 | None = None


@dataclass(slots=True)
class Step:
    """What one event or one wake-up did to a handoff."""

    handoff: Handoff
    evaluation: Evaluation | None
    decisions: list[Decision]
    forgotten: bool = False


class Book:
    """The handoffs of one partition."""

    def __init__(self, retention_us: int, orphan_retention_us: int) -> None:
        self.handoffs: dict[str, Handoff] = {}
        self.standards: dict[str, ServiceStandardV1] = {}
        self.stream_time = NEVER
        """The latest event time of this partition (microseconds): where history has got to."""
        self._calendars: dict[str, BusinessCalendar] = {}
        self._heads: dict[tuple[str, str, str, str], Head] = {}
        self._heap: list[tuple[int, str]] = []
        self._stream_heap: list[tuple[int, str]] = []
        self._retention = retention_us
        self.orphan_retention_us = orphan_retention_us
        self._times: dict[int, int] = {}
        self._unpacked: dict[str, tuple[bytes, list[Fact]]] = {}
        self.uncomputable: list[tuple[str, str]] = []
        """(handoff id, why) of wake-ups whose clocks could not be computed (taken by the
        caller to log and count)."""
        self.reader: Callable[[Book, Handoff], None] | None = None
        """Reads a restored handoff's record on its first use (`Handoff.unread_record`); set
        by the changelog codec that restores them. Raises ValueError for a bad record."""
        self.unreadable: list[tuple[str, str]] = []
        """(handoff id, why) of restored handoffs whose record could not be read: forgotten
        (taken by the caller to log and count)."""

    def __len__(self) -> int:
        return len(self.handoffs)

    def __iter__(self) -> Iterator[Handoff]:
        """Every handoff, read."""
        for handoff in list(self.handoffs.values()):
            if self.read(handoff):
                yield handoff

    def read(self, handoff: Handoff) -> bool:
        """Make sure a handoff is read (a restored one is read on its first use); False if its
        record could not be read, and the handoff is forgotten: lost like a record found
        unreadable at the restore, its later events wait as an orphan."""
        if handoff.unread is None:
            return True
        assert self.reader is not None, "an unread handoff in a book without a reader"
        try:
            self.reader(self, handoff)
        except ValueError as exc:
            self.unreadable.append((handoff.handoff_id, str(exc)))
            if self.handoffs.get(handoff.handoff_id) is handoff:
                del self.handoffs[handoff.handoff_id]
            handoff.wake = handoff.stream_wake = None
            return False
        return True

    def learn(self, standard: ServiceStandardV1, key: str | None = None) -> bool:
        """Keep a standard (True if it is new to this partition)."""
        key = key or standard_key(standard)
        if key in self.standards:
            return False
        self.standards[key] = standard
        self._calendars[key] = calendar_for(standard.calendar)
        return True

    def head(self, kind: str, from_process: str, to_process: str, standard: str) -> Head:
        """The one shared Head of a route and standard (a million handoffs share a few)."""
        key = (kind, from_process, to_process, standard)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = Head(*key)
        return head

    def time(self, instant: int) -> int:
        """One shared int per instant (a million handoffs learned in a few thousand batches)."""
        return self._times.setdefault(instant, instant)

    def apply(self, incoming: Incoming, now: int) -> Step | None:
        """Record an event and re-evaluate its handoff; None for a duplicate.

        Raises CalendarError when the handoff's clocks cannot be computed with this event
        (a deadline beyond the supported years, a calendar without working time): the event
        is then not kept, and the handoff stays as it was.

        The stream time is the caller's to move first (`stream_to`), so that what the history
        made due before this event is decided before it.
        """
        handoff = self.handoffs.get(incoming.handoff_id)
        if handoff is not None and not self.read(handoff):
            handoff = None
        created = handoff is None
        if handoff is None:
            handoff = self.handoffs[incoming.handoff_id] = Handoff(incoming.handoff_id)
            handoff.seen = now
        saved = handoff.saved()
        try:
            return self._apply(handoff, incoming, now)
        except CalendarError:
            if created:
                del self.handoffs[incoming.handoff_id]
            else:
                handoff.put_back(saved)
            raise

    def _apply(self, handoff: Handoff, incoming: Incoming, now: int) -> Step | None:
        opening = incoming.opening
        if opening is not None:
            if incoming.standard is not None:
                self.learn(incoming.standard, opening.head.standard_key)
            h = opening.head
            interned = self.head(h.kind, h.from_process, h.to_process, h.standard_key)
            if interned is not opening.head:
                opening = Opening(interned, opening.case_id, opening.priority, opening.due)
        if not handoff.add(incoming.fact, opening):
            return None
        return self.step(handoff, now)

    def horizon(self, handoff: Handoff, now: int) -> Horizon:
        """What counts as passed when deciding this handoff's clocks now."""
        learned = handoff.seen if handoff.seen is not None else EARLIEST
        return Horizon(now, min(self.stream_time, now), learned)

    def evaluate(
        self, handoff: Handoff, now: int, horizon: Horizon | None = None
    ) -> Evaluation | None:
        """The handoff's clocks as of `now` (None until its opening event has arrived); the
        outcomes as of `horizon` (default: everything up to now has passed)."""
        head = handoff.head
        if head is None:
            return None
        return evaluate(
            self.facts_of(handoff),
            priority=handoff.priority,
            standard=self.standards[head.standard_key],
            calendar=self._calendars[head.standard_key],
            due=handoff.due,
            now=now,
            horizon=horizon,
        )

    def facts_of(self, handoff: Handoff) -> list[Fact]:
        """A handoff's facts, unpacked once per change: it is evaluated at each of its events
        and each of its wake-ups, its facts change only with its events."""
        packed = handoff.packed
        cached = self._unpacked.get(handoff.handoff_id)
        if cached is not None and cached[0] is packed:
            return cached[1]
        facts = handoff.facts
        if len(self._unpacked) >= _UNPACKED:
            self._unpacked.clear()
        self._unpacked[handoff.handoff_id] = (packed, facts)
        return facts

    def step(self, handoff: Handoff, now: int) -> Step:
        """Re-evaluate a handoff, reconcile its decisions and set its next wake-ups."""
        return self._decide(handoff, now, self.evaluate(handoff, now, self.horizon(handoff, now)))

    def _decide(self, handoff: Handoff, now: int, evaluation: Evaluation | None) -> Step:
        """Reconcile a handoff's decisions with its evaluation (as of its horizon) and set its
        next wake-ups."""
        if evaluation is None:
            # Events before their handoff's opening event: keep them for a while.
            if handoff.wake is None:
                self._arm(handoff, now + self.orphan_retention_us)
            return Step(handoff, None, [])
        decisions = handoff.reconcile(evaluation)
        wall, stream = handoff.next_wake(evaluation)
        if evaluation.closed_at is not None:
            if handoff.closed_seen is None:
                handoff.closed_seen = now  # retention counts from when sla learned of it
            forget_at = handoff.closed_seen + self._retention
            wall = forget_at if wall is None else min(wall, forget_at)
        self._arm(handoff, wall)
        self._arm_stream(handoff, stream)
        return Step(handoff, evaluation, decisions)

    def rearm_all(self) -> None:
        """Rebuild the timer heaps from every handoff's wake-ups (after a restore: no decision
        is made here; anything due is decided by the first `due()`)."""
        self._compact()

    def next_wake(self) -> int | None:
        """The earliest pending wall-clock wake-up, skipping stale entries."""
        return self._top(self._heap, stream=False)

    def next_stream_wake(self) -> int | None:
        """The earliest pending stream-time wake-up, skipping stale entries."""
        return self._top(self._stream_heap, stream=True)

    def _top(self, heap: list[tuple[int, str]], stream: bool) -> int | None:
        while heap:
            at, handoff_id = heap[0]
            handoff = self.handoffs.get(handoff_id)
            if handoff is not None and (handoff.stream_wake if stream else handoff.wake) == at:
                return at
            heapq.heappop(heap)
        return None

    def advance_stream(self, to: int) -> bool:
        """Move the stream time forward (True if it moved): e.g. to now once a partition's
        history has been quiet long enough to be over."""
        if to <= self.stream_time:
            return False
        self.stream_time = to
        return True

    def stream_to(self, instant: int, now: int) -> list[Step]:
        """An event of `instant` was read: the stream time reaches it, and what history made
        due by then is decided -- before the event itself, as it happened."""
        if not self.advance_stream(instant):
            return []
        return self.due_stream(now)

    def due(self, now: int, limit: int = 1000) -> list[Step]:
        """Wake up the handoffs whose wall-clock time has come (at most `limit` at once)."""
        steps: list[Step] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(steps) < limit:
            at, handoff_id = heapq.heappop(heap)
            handoff = self.handoffs.get(handoff_id)
            if handoff is None or handoff.wake != at:
                continue  # stale: the wake-up moved since
            handoff.wake = None
            step = self._wake(handoff, now)
            if step is not None:
                steps.append(step)
        self._maybe_compact()
        return steps

    def due_stream(self, now: int, limit: int | None = None) -> list[Step]:
        """Wake up the handoffs whose stream-time instant the stream time has reached."""
        steps: list[Step] = []
        heap = self._stream_heap
        until = min(self.stream_time, now)
        while heap and heap[0][0] <= until and (limit is None or len(steps) < limit):
            at, handoff_id = heapq.heappop(heap)
            handoff = self.handoffs.get(handoff_id)
            if handoff is None or handoff.stream_wake != at:
                continue
            handoff.stream_wake = None
            step = self._wake(handoff, now)
            if step is not None:
                steps.append(step)
        self._maybe_compact()
        return steps

    def _wake(self, handoff: Handoff, now: int) -> Step | None:
        if not self.read(handoff):
            return None
        try:
            # Evaluated once, as of the horizon the decisions need: whether it is closed, or
            # an orphan, does not depend on the horizon.
            evaluation = self.evaluate(handoff, now, self.horizon(handoff, now))
        except CalendarError as exc:
            # Cannot happen for a handoff whose events were all computable when they came
            # (`apply` refuses the others); kept from going round for ever all the same.
            self.uncomputable.append((handoff.handoff_id, str(exc)))
            handoff.wake = handoff.stream_wake = None
            return None
        if evaluation is None:
            expired = True  # an orphan whose opening event never came
        elif evaluation.closed_at is None:
            expired = False
        else:
            closed_seen = handoff.closed_seen
            if closed_seen is None:  # a record from before closed_seen was kept
                closed_seen = evaluation.closed_at
            expired = now >= closed_seen + self._retention
        if expired:
            del self.handoffs[handoff.handoff_id]
            handoff.wake = handoff.stream_wake = None
            return Step(handoff, evaluation, [], forgotten=True)
        return self._decide(handoff, now, evaluation)

    def _arm(self, handoff: Handoff, wake: int | None) -> None:
        if wake == handoff.wake:
            return
        handoff.wake = wake
        if wake is not None:
            heapq.heappush(self._heap, (wake, handoff.handoff_id))

    def _arm_stream(self, handoff: Handoff, wake: int | None) -> None:
        if wake == handoff.stream_wake:
            return
        handoff.stream_wake = wake
        if wake is not None:
            heapq.heappush(self._stream_heap, (wake, handoff.handoff_id))

    def _maybe_compact(self) -> None:
        if len(self._heap) + len(self._stream_heap) > 2 * len(self.handoffs) + 1024:
            self._compact()

    def _compact(self) -> None:
        handoffs = self.handoffs.values()
        self._heap = [(h.wake, h.handoff_id) for h in handoffs if h.wake is not None]
        heapq.heapify(self._heap)
        self._stream_heap = [
            (h.stream_wake, h.handoff_id) for h in handoffs if h.stream_wake is not None
        ]
        heapq.heapify(self._stream_heap)
