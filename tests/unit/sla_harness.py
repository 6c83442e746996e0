"""A small driver of the sla domain for tests: events in, decisions out, time under control."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import builders
from builders import ALWAYS, T0
from shared.calendar import to_us
from shared.contracts import CalendarV1, ClockName, Priority, ServiceStandardV1
from shared.events import Outcome
from sla.domain.book import Book, Incoming, Step, standard_key
from sla.domain.facts import FACT_OF_EVENT, PRIORITIES, Fact, FactType
from sla.domain.handoff import Decision, DecisionKind, Head, Opening

US = 1_000_000
CLOCK_TARGETS: dict[Priority, tuple[str | None, str | None]] = {
    Priority.P1: ("15m", "1h"),
    Priority.P2: ("30m", "2h"),
    Priority.P3: ("1h", "4h"),
    Priority.P4: ("2h", "8h"),
}


def standard(
    calendar: CalendarV1 = ALWAYS,
    targets: dict[Priority, tuple[str | None, str | None]] | None = None,
    warnings: tuple[int, ...] = (50, 75),
    delivery: str | None = None,
) -> ServiceStandardV1:
    """The harness's standard: P1 15m/1h ... P4 2h/8h unless other targets are given."""
    return builders.standard(
        "r1",
        calendar=calendar,
        targets=targets or CLOCK_TARGETS,
        warnings=warnings,
        delivery=delivery,
    )


_KEYS: dict[int, tuple[ServiceStandardV1, str]] = {}


def _key(std: ServiceStandardV1) -> str:
    """standard_key, cached per standard object (the harness reuses a few)."""
    cached = _KEYS.get(id(std))
    if cached is None or cached[0] is not std:
        cached = _KEYS[id(std)] = (std, standard_key(std))
    return cached[1]


def at(minutes: float) -> int:
    """T0 + minutes, in microseconds."""
    return to_us(T0 + timedelta(minutes=minutes))


@dataclass
class Ev:
    """A lifecycle event for the harness: type name, event time (minutes after T0)."""

    type: str
    minute: float
    event_id: str
    priority: Priority = Priority.P3
    due_minute: float | None = None

    def incoming(self, handoff_id: str, std: ServiceStandardV1) -> Incoming:
        fact_type = FACT_OF_EVENT[f"handoff.{self.type}"]
        value = PRIORITIES.index(self.priority) if fact_type is FactType.REPRIORITIZED else 0
        fact = Fact(at(self.minute), fact_type, self.event_id, value)
        if fact_type not in (FactType.SUBMITTED, FactType.EXPECTED):
            return Incoming(handoff_id, fact)
        head = Head("incident", "service-desk", "it-l2", _key(std))
        due = None if self.due_minute is None else at(self.due_minute)
        return Incoming(handoff_id, fact, Opening(head, "case-1", self.priority, due), std)


@dataclass
class Run:
    """Feeds events to a Book, firing timers as time passes, and records every decision."""

    std: ServiceStandardV1 = field(default_factory=standard)
    handoff_id: str = "h-1"
    book: Book = field(default_factory=lambda: Book(365 * 86400 * US, 86400 * US))
    decisions: list[Decision] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    now: int = 0

    def advance(self, minute: float) -> None:
        """Move time to T0 + minute, firing every wake-up due on the way, in order."""
        target = at(minute)
        while True:
            wake = self.book.next_wake()
            if wake is None or wake > target:
                break
            self.now = max(self.now, wake)
            for step in self.book.due(self.now):
                self.steps.append(step)
                self.decisions.extend(step.decisions)
        self.now = max(self.now, target)

    def send(self, *events: Ev, arrive: float | None = None) -> list[Decision]:
        """Deliver events at `arrive` (default: the last event's time); before each, what the
        stream time it reaches makes due in history is decided, as the service does."""
        self.advance(arrive if arrive is not None else max(e.minute for e in events))
        out: list[Decision] = []
        for event in events:
            incoming = event.incoming(self.handoff_id, self.std)
            steps = self.book.stream_to(incoming.fact.at, self.now)
            step = self.book.apply(incoming, self.now)
            for s in [*steps, *([step] if step is not None else [])]:
                self.steps.append(s)
                out.extend(s.decisions)
        self.decisions.extend(out)
        return out

    def settle(self) -> None:
        """The partition's history went quiet: its stream time moves to now (the idle rule)."""
        self.book.advance_stream(self.now)
        for step in self.book.due_stream(self.now):
            self.steps.append(step)
            self.decisions.extend(step.decisions)

    def evaluation(self):  # type: ignore[no-untyped-def]
        handoff = self.book.handoffs[self.handoff_id]
        return self.book.evaluate(handoff, self.now)

    def clock(self, name: ClockName, cycle: int = 1):  # type: ignore[no-untyped-def]
        ev = self.evaluation()
        return next(c for c in ev.clocks if c.name is name and c.cycle == cycle)

    def kinds(self, name: ClockName | None = None) -> list[str]:
        """Decision kinds in order (optionally of one clock), e.g. ['warning', 'missed']."""
        return [
            d.kind.value
            for d in self.decisions
            if name is None or (d.clock is not None and d.clock.name is name)
        ]


def net_outcomes(decisions: Iterable[Decision]) -> dict[tuple[int, str], Outcome]:
    """Outcomes minus retractions per (cycle number, clock): what reports end up showing."""
    net: dict[tuple[int, str], Outcome] = {}
    for d in decisions:
        if d.clock is None:
            continue
        key = (d.clock.cycle, d.clock.name.value)
        if d.kind is DecisionKind.MET:
            net[key] = Outcome.MET
        elif d.kind is DecisionKind.MISSED:
            net[key] = Outcome.MISSED
        elif d.kind is DecisionKind.RETRACTED:
            net.pop(key, None)
    return net


def outcome_counts(decisions: Iterable[Decision]) -> dict[str, int]:
    """met/missed/retracted counts: what Prometheus counters would hold."""
    counts = {"met": 0, "missed": 0, "retracted": 0}
    for d in decisions:
        if d.kind.value in counts:
            counts[d.kind.value] += 1
    return counts
