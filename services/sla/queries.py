"""What sla's API reads: one handoff, the lists, a case -- through this interface only.

The API never reaches into the consumer: it asks here, and this module reads the partitions'
books through the `Books` callable it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from shared.calendar import to_us
from shared.clock import Clock
from shared.contracts import Priority
from sla.domain.book import Book, Held
from sla.domain.cases import CaseHandoff, CaseView, case_view
from sla.domain.clocks import ClockView
from sla.domain.facts import Fact
from sla.domain.handoff import Handoff
from sla.domain.views import listed_clock

Books = Callable[[], Mapping[int, Book]]
"""The books of the partitions this instance holds, by partition."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A handoff whose opening event has not arrived yet: its events wait for it."""

    handoff_id: str
    facts: list[Fact]


@dataclass(frozen=True, slots=True)
class Listed:
    """One handoff in a list view, with the clock that put it there."""

    held: Held
    clock: ClockView


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list view may be narrowed to."""

    from_process: str | None = None
    to_process: str | None = None
    kind: str | None = None
    priority: Priority | None = None

    def admits(self, handoff: Handoff) -> bool:
        """The cheap check, before any clock is evaluated."""
        head = handoff.head
        return head is not None and not (
            (self.from_process and head.from_process != self.from_process)
            or (self.to_process and head.to_process != self.to_process)
            or (self.kind and head.kind != self.kind)
        )


class SlaQueries:
    """Reads for the API, as of the clock's now."""

    def __init__(self, books: Books, clock: Clock) -> None:
        self._books = books
        self._clock = clock

    def now(self) -> int:
        """The instant answers are computed for (microseconds)."""
        return to_us(self._clock.now())

    def partitions(self) -> list[int]:
        """The partitions this instance answers for."""
        return sorted(self._books())

    def handoff(self, handoff_id: str) -> Held | Pending | None:
        """A handoff with its clocks as of now (Pending before its opening event)."""
        for book in self._books().values():
            handoff = book.handoffs.get(handoff_id)
            if handoff is None:
                continue
            held = book.held(handoff, self.now())
            return held if held is not None else Pending(handoff_id, handoff.facts)
        return None

    def _held(self, now: int, keep: Callable[[Handoff], bool]) -> Iterator[Held]:
        for book in list(self._books().values()):
            for handoff in list(book.handoffs.values()):
                if handoff.head is None or not keep(handoff):
                    continue
                held = book.held(handoff, now)
                if held is not None:
                    yield held

    def listed(self, view: str, filters: Filters, limit: int) -> tuple[int, list[Listed]]:
        """The handoffs of a list view, most urgent first: (how many, the first `limit`)."""
        now = self.now()
        found: list[Listed] = []
        for held in self._held(now, filters.admits):
            if filters.priority and held.evaluation.priority != filters.priority:
                continue
            clock = listed_clock(held.evaluation, view, now)
            if clock is not None:
                found.append(Listed(held, clock))
        found.sort(
            key=lambda i: (
                i.clock.deadline is None,
                i.clock.deadline or 0,
                i.held.handoff.handoff_id,
            )
        )
        return len(found), found[:limit]

    def case(self, case_id: str) -> tuple[CaseView, dict[str, Held]] | None:
        """Which teams held a case how long, with each of its handoffs (None: unknown)."""
        now = self.now()
        helds = {h.handoff.handoff_id: h for h in self._held(now, lambda h: h.case_id == case_id)}
        if not helds:
            return None
        items = [
            CaseHandoff(i, h.head, h.evaluation, h.handoff.facts[0].at) for i, h in helds.items()
        ]
        return case_view(case_id, items, now), helds


def _urgency(item: Listed) -> tuple[bool, int, str]:
    """Earliest deadline first; clocks without a deadline last; then by id."""
    deadline = item.clock.deadline
    return deadline is None, deadline or 0, item.held.handoff.handoff_id
