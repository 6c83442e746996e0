"""The clocks of one handoff, computed from its facts and the current instant (SPEC section 3).

`evaluate` is a pure function: facts (sorted by event time) + the pinned standard + now ->
every cycle's clocks with start, deadline, elapsed business and wall time, paused time, stage
and the outcome that is true *as of now*. What has already been emitted plays no part here;
`handoff.reconcile` compares the two. Because the result depends only on the set of facts,
late, duplicated and out-of-order events converge to what in-order arrival gives.

Rules, each traceable to SPEC section 3:
- The clock belongs to the receiving team: response and resolution start at the delivery
  (`submitted`), on the standard's calendar (the receiver's unless the route names another).
- `paused` stops the clocks until `resumed`. A pause counts against the response clock only
  before the first response -- which falls out of clipping pauses to each clock's window.
- `rejected` is a response (the receiver reacted) and closes the cycle as a quality defect:
  the resolution clock of that cycle stops without outcome (unless already missed); the next
  `submitted` opens a new cycle with fresh clocks. Every cycle is kept.
- `reprioritized` applies the new priority's targets from the original start, keeping pauses:
  the priority of a clock is the last one set before the clock stopped -- unless the clock had
  already breached when the new priority was set (its deadline then in force had passed, in
  event time): re-targeting never erases a breach that had happened.
- A milestone reached during a pause decides its clock at that moment (met if in time).
- `completed` is the resolution and, if none came before, also the response.
- `cancelled` stops every running clock with no outcome; a deadline that passed before the
  cancellation stays missed.
- Delivery clock: an `expected` handoff is due at `due_at` (or after the standard's delivery
  target); the first `submitted` is its milestone.
- A milestone exactly at the deadline is met; a clock is missed once now is past its deadline.

"Now" is a `Horizon`: what sla learned in advance is decided by the wall clock (a deadline
passes the moment it passes), what was already history when sla learned of it -- a backfill, a
replayed log, an event that arrives late -- is decided by the partition's stream time (the
latest event time seen), so a clock whose settling event comes later in the same history is
decided once, as it happened, instead of missed at arrival and retracted a moment later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache

from shared.calendar import BusinessCalendar
from shared.contracts import ClockName, Priority, ServiceStandardV1
from shared.events import ClockStage, HandoffState, Outcome
from sla.domain.facts import Fact, FactType

US = 1_000_000
Pause = tuple[int, int | None]
EARLIEST = -(1 << 62)
"""Before any instant: a handoff learned of at EARLIEST has every deadline decided live."""


@dataclass(frozen=True, slots=True)
class Horizon:
    """Which instants count as passed when deciding a clock.

    An instant at or before `now` is passed if sla learned of the handoff before it (`learned`,
    wall clock: a live deadline) or if the partition's stream time has reached it (`stream`:
    history decided in event-time order). `truth(now)` passes everything up to now: what a
    reader asking "is it late?" wants.
    """

    now: int
    stream: int
    learned: int = EARLIEST

    @classmethod
    def truth(cls, now: int) -> Horizon:
        """Every instant up to now is passed."""
        return cls(now, now)

    def passed(self, instant: int) -> bool:
        """True once `instant` counts as reached."""
        return instant <= self.now and (instant >= self.learned or instant <= self.stream)

    def live(self, instant: int) -> bool:
        """True for an instant sla learned of in advance (decided by the wall clock)."""
        return instant >= self.learned


@dataclass(slots=True)
class ClockView:
    """One clock of one cycle, as of `now`."""

    name: ClockName
    cycle_key: str
    """The id of the event that started the cycle: stable however cycles get renumbered."""
    cycle: int
    priority: Priority
    start: int
    target: int
    deadline: int | None
    """None while paused before the target was used up: the deadline is not known yet."""
    stop: int | None
    """When the milestone was reached."""
    void_at: int | None
    """When the clock stopped without its milestone (cycle rejected, handoff cancelled)."""
    paused_now: bool
    elapsed_wall: int
    thresholds: tuple[tuple[int, int | None], ...]
    """(percent, instant the percentage of the target is used up) per warning threshold, for a
    running clock (empty once it stopped: what it reached is `elapsed_business`)."""
    outcome: Outcome | None
    calendar: BusinessCalendar | None = None
    window: Sequence[Pause] = ()
    upto: int = 0
    measured: tuple[int, int] | None = None
    """(business, paused) time from start to `upto`, measured on first use: deciding needs
    it only for clocks that stopped, reading for every clock."""

    @property
    def elapsed_business(self) -> int:
        """Business time used, pauses excluded (until now, or until the clock stopped)."""
        return self._measure()[0]

    @property
    def paused_business(self) -> int:
        """Business time spent paused within the clock's window."""
        return self._measure()[1]

    def _measure(self) -> tuple[int, int]:
        if self.measured is None:
            if self.calendar is None:
                self.measured = (0, 0)
            else:
                self.measured = business_between(self.calendar, self.start, self.upto, self.window)
        return self.measured

    @property
    def stage(self) -> ClockStage:
        """running, paused, stopped (milestone reached) or cancelled (stopped without it)."""
        if self.stop is not None:
            return ClockStage.STOPPED
        if self.void_at is not None:
            return ClockStage.CANCELLED
        return ClockStage.PAUSED if self.paused_now else ClockStage.RUNNING

    @property
    def running(self) -> bool:
        """True while neither the milestone nor a stop without it has happened."""
        return self.stop is None and self.void_at is None

    def reached(self, percent: int) -> bool:
        """Whether the business time used reached `percent` of the target (by now while the
        clock runs, by its stop once it stopped)."""
        return self.elapsed_business >= self.target * percent // 100

    @property
    def remaining_business(self) -> int:
        """Business time left before the deadline (negative once overdue)."""
        return self.target - self.elapsed_business

    @property
    def key(self) -> tuple[str, ClockName]:
        """What identifies this clock across re-evaluations."""
        return (self.cycle_key, self.name)


@dataclass(slots=True)
class CycleView:
    """One delivery of the handoff to the receiver, until completion, rejection or cancel."""

    key: str
    number: int
    start: int
    end: int | None
    ended_by: FactType | None
    pauses: list[Pause] = field(default_factory=list)


@dataclass(slots=True)
class Evaluation:
    """Everything about a handoff's clocks as of `now`."""

    now: int
    horizon: Horizon
    state: HandoffState
    priority: Priority
    cycles: list[CycleView]
    clocks: list[ClockView]
    closed_at: int | None
    """When the handoff was completed or cancelled (it can be forgotten some time later)."""


def ideal_outcome(
    deadline: int | None, stop: int | None, end: int | None, horizon: Horizon
) -> Outcome | None:
    """The outcome true as of the horizon: met if the milestone came by the deadline; missed
    if the clock stopped after it (milestone or not), or runs and the horizon passed it."""
    if deadline is None:
        return None
    if stop is not None and stop <= deadline:
        return Outcome.MET
    if end is not None:
        return Outcome.MISSED if end > deadline else None
    return Outcome.MISSED if horizon.passed(deadline + 1) else None


def _priority_at(
    initial: Priority, changes: Sequence[tuple[int, Priority]], until: int | None
) -> Priority:
    """The last priority set at or before `until` (all changes when the clock still runs)."""
    priority = initial
    for at, value in changes:
        if until is not None and at > until:
            break
        priority = value
    return priority


def deadline_with_pauses(
    calendar: BusinessCalendar, start: int, target: int, pauses: Sequence[Pause]
) -> int | None:
    """The instant `target` business time is used up after `start`, not counting pauses.

    None when an open pause began before the target was used up: the deadline depends on
    when the pause ends.
    """
    t, remaining = start, target
    for p0, p1 in pauses:
        if p0 < t:
            p0 = t
        candidate = calendar.add_us(t, remaining)
        if candidate <= p0:
            return candidate
        remaining -= calendar.elapsed_us(t, p0)
        if p1 is None:
            return None
        t = max(t, p1)
    return calendar.add_us(t, remaining)


@lru_cache(maxsize=1 << 16)
def _deadline(
    calendar: BusinessCalendar, start: int, target: int, pauses: tuple[Pause, ...]
) -> int | None:
    """deadline_with_pauses, remembered: a handoff is evaluated at each of its events and at
    each of its wake-ups, and its instants only move when its facts do."""
    return deadline_with_pauses(calendar, start, target, pauses)


def business_between(
    calendar: BusinessCalendar, start: int, end: int, pauses: Sequence[Pause]
) -> tuple[int, int]:
    """(business time in [start, end) outside pauses, business time paused in that window)."""
    if end <= start:
        return 0, 0
    total = calendar.elapsed_us(start, end)
    paused = 0
    for p0, p1 in pauses:
        lo, hi = max(p0, start), min(end if p1 is None else p1, end)
        if hi > lo:
            paused += calendar.elapsed_us(lo, hi)
    return total - paused, paused


def clock_window(pauses: Sequence[Pause], end: int | None) -> tuple[Pause, ...]:
    """The pauses that matter to a clock that stopped at `end` (None: still running): those
    that began before it stopped, each counted only until then -- a milestone reached during
    a pause (a response while waiting on the supplier) decides the clock at that moment."""
    if not pauses:
        return ()
    if end is None:
        return tuple(pauses)
    return tuple((p0, end if p1 is None or p1 > end else p1) for p0, p1 in pauses if p0 < end)


def clock_priority(
    *,
    name: ClockName,
    standard: ServiceStandardV1,
    calendar: BusinessCalendar,
    start: int,
    pauses: Sequence[Pause],
    initial: Priority,
    changes: Sequence[tuple[int, Priority]],
    until: int | None,
) -> Priority:
    """The priority a clock is judged by: the last one set before the clock stopped (`until`)
    -- except that re-targeting never erases a breach that had already happened: a priority
    set after the deadline then in force had passed (event time) leaves the clock judged by
    the priority it breached under, so `ever_breached` and the outcome counters keep it."""
    priority = initial
    for at, value in changes:
        if until is not None and at > until:
            break
        target = standard.target(priority, name)
        if target is not None:
            window = clock_window(pauses, until)
            deadline = _deadline(calendar, start, _us(target), window)
            if deadline is not None and at > deadline:
                break  # already breached when re-targeted: the breach stands
        priority = value
    return priority


def _us(duration: timedelta) -> int:
    return int(duration.total_seconds() * US)


def _clock(
    *,
    name: ClockName,
    cycle: CycleView,
    calendar: BusinessCalendar,
    target: int,
    priority: Priority,
    stop: int | None,
    void_at: int | None,
    pauses: Sequence[Pause],
    warnings: Sequence[int],
    horizon: Horizon,
) -> ClockView:
    end = stop if stop is not None else void_at
    window = clock_window(pauses, end)
    deadline = _deadline(calendar, cycle.start, target, window)
    upto = end if end is not None else max(horizon.now, cycle.start)
    paused_now = end is None and bool(window) and window[-1][1] is None
    thresholds: tuple[tuple[int, int | None], ...] = ()
    if end is None:
        thresholds = tuple(
            (pct, _deadline(calendar, cycle.start, target * pct // 100, window)) for pct in warnings
        )
    return ClockView(
        name=name,
        cycle_key=cycle.key,
        cycle=cycle.number,
        priority=priority,
        start=cycle.start,
        target=target,
        deadline=deadline,
        stop=stop,
        void_at=void_at if stop is None else None,
        paused_now=paused_now,
        elapsed_wall=max(upto - cycle.start, 0),
        thresholds=thresholds,
        outcome=ideal_outcome(deadline, stop, end, horizon),
        calendar=calendar,
        window=window,
        upto=upto,
    )


def evaluate(
    facts: Sequence[Fact],
    *,
    priority: Priority,
    standard: ServiceStandardV1,
    calendar: BusinessCalendar,
    due: int | None,
    now: int,
    horizon: Horizon | None = None,
) -> Evaluation:
    """The clocks of a handoff as of `now`, from its facts sorted by (time, rank, id); the
    outcomes as of `horizon` (default: everything up to now counts as passed)."""
    if horizon is None:
        horizon = Horizon.truth(now)
    cycles: list[CycleView] = []
    current: CycleView | None = None
    first_response: dict[str, int] = {}
    changes: list[tuple[int, Priority]] = []
    expected: Fact | None = None
    delivered_at: int | None = None
    cancelled_at: int | None = None
    completed = False

    for fact in facts:
        if cancelled_at is not None and fact.type is not FactType.RATED:
            continue  # nothing after a cancellation moves a clock
        match fact.type:
            case FactType.EXPECTED:
                if expected is None:
                    expected = fact
            case FactType.SUBMITTED:
                if current is None and not completed:
                    current = CycleView(fact.event_id, len(cycles) + 1, fact.at, None, None)
                    cycles.append(current)
                    if delivered_at is None:
                        delivered_at = fact.at
            case FactType.ACCEPTED:
                if current is not None:
                    first_response.setdefault(current.key, fact.at)
            case FactType.COMPLETED | FactType.REJECTED:
                if current is not None:
                    first_response.setdefault(current.key, fact.at)
                    if current.pauses and current.pauses[-1][1] is None:
                        current.pauses[-1] = (current.pauses[-1][0], fact.at)
                    current.end, current.ended_by = fact.at, fact.type
                    completed = fact.type is FactType.COMPLETED
                    current = None
            case FactType.PAUSED:
                if current is not None and not (current.pauses and current.pauses[-1][1] is None):
                    current.pauses.append((fact.at, None))
            case FactType.RESUMED:
                if current is not None and current.pauses and current.pauses[-1][1] is None:
                    current.pauses[-1] = (current.pauses[-1][0], fact.at)
            case FactType.REPRIORITIZED:
                changes.append((fact.at, fact.priority))
            case FactType.CANCELLED:
                cancelled_at = fact.at
                if current is not None:
                    if current.pauses and current.pauses[-1][1] is None:
                        current.pauses[-1] = (current.pauses[-1][0], fact.at)
                    current.end, current.ended_by = fact.at, FactType.CANCELLED
                    current = None
            case FactType.RATED:
                pass

    clocks: list[ClockView] = []
    warnings = standard.warnings
    for cycle in cycles:
        response_at = first_response.get(cycle.key)
        void_at = cycle.end if cycle.ended_by is FactType.CANCELLED else None
        for name, stop in (
            (ClockName.RESPONSE, response_at),
            (ClockName.RESOLUTION, cycle.end if cycle.ended_by is FactType.COMPLETED else None),
        ):
            clock_void = void_at
            if name is ClockName.RESOLUTION and cycle.ended_by is FactType.REJECTED:
                clock_void = cycle.end
            until = stop if stop is not None else clock_void
            prio = clock_priority(
                name=name,
                standard=standard,
                calendar=calendar,
                start=cycle.start,
                pauses=cycle.pauses,
                initial=priority,
                changes=changes,
                until=until,
            )
            target = standard.target(prio, name)
            if target is None:
                continue
            clocks.append(
                _clock(
                    name=name,
                    cycle=cycle,
                    calendar=calendar,
                    target=_us(target),
                    priority=prio,
                    stop=stop,
                    void_at=clock_void,
                    pauses=cycle.pauses,
                    warnings=warnings,
                    horizon=horizon,
                )
            )

    if expected is not None:
        delivery = _delivery_clock(
            expected, delivered_at, cancelled_at, due, standard, calendar, priority, horizon
        )
        if delivery is not None:
            clocks.insert(0, delivery)

    state = _state(cycles, cancelled_at)
    closed_at = cancelled_at if cancelled_at is not None else None
    if state is HandoffState.COMPLETED and cycles:
        closed_at = cycles[-1].end
    return Evaluation(
        now=now,
        horizon=horizon,
        state=state,
        priority=_priority_at(priority, changes, None),
        cycles=cycles,
        clocks=clocks,
        closed_at=closed_at,
    )


def _delivery_clock(
    expected: Fact,
    delivered_at: int | None,
    cancelled_at: int | None,
    due: int | None,
    standard: ServiceStandardV1,
    calendar: BusinessCalendar,
    priority: Priority,
    horizon: Horizon,
) -> ClockView | None:
    start = expected.at
    if due is not None:
        deadline = due
        target = calendar.elapsed_us(start, due)
    elif standard.delivery is not None:
        target = int(standard.delivery.total_seconds() * US)
        deadline = calendar.add_us(start, target)
    else:
        return None
    stop = delivered_at
    void_at = None
    if cancelled_at is not None and (stop is None or cancelled_at < stop):
        stop, void_at = None, cancelled_at
    end = stop if stop is not None else void_at
    upto = end if end is not None else max(horizon.now, start)
    thresholds: tuple[tuple[int, int | None], ...] = ()
    if end is None:
        thresholds = tuple(
            (pct, calendar.add_us(start, target * pct // 100)) for pct in standard.warnings
        )
    return ClockView(
        name=ClockName.DELIVERY,
        cycle_key=expected.event_id,
        cycle=1,
        priority=priority,
        start=start,
        target=target,
        deadline=deadline,
        stop=stop,
        void_at=void_at,
        paused_now=False,
        elapsed_wall=max(upto - start, 0),
        thresholds=thresholds,
        outcome=ideal_outcome(deadline, stop, end, horizon),
        calendar=calendar,
        upto=upto,
    )


def _state(cycles: Sequence[CycleView], cancelled_at: int | None) -> HandoffState:
    if cancelled_at is not None:
        return HandoffState.CANCELLED
    if not cycles:
        return HandoffState.EXPECTED
    last = cycles[-1]
    if last.ended_by is FactType.COMPLETED:
        return HandoffState.COMPLETED
    if last.ended_by is FactType.REJECTED:
        return HandoffState.RETURNED
    return HandoffState.OPEN
