"""The handoffs of one partition, their standards, and one timer for the next wake-up.

Pure: the caller passes `now` and publishes what comes back. Time-driven decisions come from
one heap of (wake-up, handoff id) -- the earliest instant at which time alone changes
something (a warning threshold, a deadline, the end of a closed handoff's retention) --
never from a scan. Stale heap entries are skipped lazily and compacted now and then.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from shared.calendar import BusinessCalendar, CalendarError, calendar_for
from shared.contracts import ServiceStandardV1
from sla.domain.clocks import Evaluation, evaluate
from sla.domain.facts import Fact
from sla.domain.handoff import Decision, Handoff, Head, Opening


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


@dataclass(frozen=True, slots=True)
class Held:
    """A handoff whose opening event arrived, with its clocks as of now and its standard."""

    handoff: Handoff
    head: Head
    evaluation: Evaluation
    standard: ServiceStandardV1


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
        self._calendars: dict[str, BusinessCalendar] = {}
        self._heads: dict[tuple[str, str, str, str], Head] = {}
        self._heap: list[tuple[int, str]] = []
        self._retention = retention_us
        self._orphan_retention = orphan_retention_us
        self.uncomputable: list[tuple[str, str]] = []
        """(handoff id, why) of wake-ups whose clocks could not be computed (taken by the
        caller to log and count)."""

    def __len__(self) -> int:
        return len(self.handoffs)

    def __iter__(self) -> Iterator[Handoff]:
        return iter(self.handoffs.values())

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

    def apply(self, incoming: Incoming, now: int) -> Step | None:
        """Record an event and re-evaluate its handoff; None for a duplicate.

        Raises CalendarError when the handoff's clocks cannot be computed with this event
        (a deadline beyond the supported years, a calendar without working time): the event
        is then not kept, and the handoff stays as it was.
        """
        handoff = self.handoffs.get(incoming.handoff_id)
        created = handoff is None
        if handoff is None:
            handoff = self.handoffs[incoming.handoff_id] = Handoff(incoming.handoff_id)
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

    def evaluate(self, handoff: Handoff, now: int) -> Evaluation | None:
        """The handoff's clocks as of `now` (None until its opening event has arrived)."""
        head = handoff.head
        if head is None:
            return None
        return evaluate(
            handoff.facts,
            priority=handoff.priority,
            standard=self.standards[head.standard_key],
            calendar=self._calendars[head.standard_key],
            due=handoff.due,
            now=now,
        )

    def held(self, handoff: Handoff, now: int) -> Held | None:
        """The handoff with its clocks and standard (None until its opening event arrived)."""
        evaluation = self.evaluate(handoff, now)
        if evaluation is None or handoff.head is None:
            return None
        return Held(handoff, handoff.head, evaluation, self.standards[handoff.head.standard_key])

    def step(self, handoff: Handoff, now: int) -> Step:
        """Re-evaluate a handoff, reconcile its decisions and set its next wake-up."""
        evaluation = self.evaluate(handoff, now)
        if evaluation is None:
            # Events before their handoff's opening event: keep them for a while.
            if handoff.wake is None:
                self._arm(handoff, now + self._orphan_retention)
            return Step(handoff, None, [])
        decisions = handoff.reconcile(evaluation)
        wake = handoff.next_wake(evaluation)
        if evaluation.closed_at is not None:
            forget_at = evaluation.closed_at + self._retention
            wake = forget_at if wake is None else min(wake, forget_at)
        self._arm(handoff, wake)
        return Step(handoff, evaluation, decisions)

    def rearm_all(self) -> None:
        """Rebuild the timer heap from every handoff's wake-up (after a restore: no decision
        is made here; anything due is decided by the first `due()`)."""
        self._compact()

    def next_wake(self) -> int | None:
        """The earliest pending wake-up, skipping stale entries."""
        heap = self._heap
        while heap:
            at, handoff_id = heap[0]
            handoff = self.handoffs.get(handoff_id)
            if handoff is not None and handoff.wake == at:
                return at
            heapq.heappop(heap)
        return None

    def due(self, now: int, limit: int = 1000) -> list[Step]:
        """Wake up the handoffs whose time has come (at most `limit` at once)."""
        steps: list[Step] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(steps) < limit:
            at, handoff_id = heapq.heappop(heap)
            handoff = self.handoffs.get(handoff_id)
            if handoff is None or handoff.wake != at:
                continue  # stale: the wake-up moved since
            handoff.wake = None
            try:
                evaluation = self.evaluate(handoff, now)
            except CalendarError as exc:
                # Cannot happen for a handoff whose events were all computable when they came
                # (`apply` refuses the others); kept from going round for ever all the same.
                self.uncomputable.append((handoff_id, str(exc)))
                continue
            closed = evaluation is not None and evaluation.closed_at is not None
            expired = evaluation is None or (
                closed
                and evaluation.closed_at is not None
                and now >= evaluation.closed_at + self._retention
            )
            if expired:
                del self.handoffs[handoff_id]
                steps.append(Step(handoff, evaluation, [], forgotten=True))
                continue
            steps.append(self.step(handoff, now))
        if len(heap) > 2 * len(self.handoffs) + 1024:
            self._compact()
        return steps

    def _arm(self, handoff: Handoff, wake: int | None) -> None:
        if wake == handoff.wake:
            return
        handoff.wake = wake
        if wake is not None:
            heapq.heappush(self._heap, (wake, handoff.handoff_id))

    def _compact(self) -> None:
        self._heap = [(h.wake, h.handoff_id) for h in self.handoffs.values() if h.wake is not None]
        heapq.heapify(self._heap)
