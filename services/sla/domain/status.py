"""A handoff's status as the status table holds it, brought to a reader's "now" (pure).

The owner of a handoff's partition writes its row (HandoffStatusV1) whenever the handoff
changes; between two rows nothing changes but time. So a reader -- any sla instance -- brings a
row to its own now exactly: a running clock's business time grows on its calendar from the
row's `as_of` (a paused clock's paused time does instead), and a running clock is missed once
now is past its deadline. Everything else is as written.

`Brief` is the few numbers of a clock the list views need, kept per row by the table so that a
list is computed without decoding rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from shared.calendar import BusinessCalendar, to_us
from shared.contracts import ClockName
from shared.events import ClockStage, ClockStatusV1, HandoffState, HandoffStatusV1, Outcome

US = 1_000_000
NO_DEADLINE = 1 << 62
OPEN_STATES = frozenset({HandoffState.EXPECTED, HandoffState.OPEN, HandoffState.RETURNED})
_RUNNING = frozenset({ClockStage.RUNNING, ClockStage.PAUSED})


def gained(as_of: int, now: int, calendar: BusinessCalendar | None) -> int:
    """Business time between the row's as_of and now (microseconds)."""
    if now <= as_of:
        return 0
    if calendar is None:
        return now - as_of
    return calendar.elapsed_us(as_of, now)


class Brief(NamedTuple):
    """A running clock, as the list views need it (instants in microseconds)."""

    clock: ClockName
    deadline: int | None
    missed: bool
    paused: bool
    target: int
    business: int
    """Business time used as of the row's as_of."""
    first_warning: int | None
    """When the first warning threshold is reached (None: none, or paused before it)."""

    def business_now(self, as_of: int, now: int, calendar: BusinessCalendar | None) -> int:
        """Business time used by now."""
        return self.business if self.paused else self.business + gained(as_of, now, calendar)

    def overdue(self, now: int) -> bool:
        """Missed, or past its deadline by now."""
        return self.missed or (self.deadline is not None and now > self.deadline)

    def at_risk(self, now: int) -> bool:
        """A warning threshold reached by now, the deadline not passed yet."""
        return (
            not self.overdue(now) and self.first_warning is not None and self.first_warning <= now
        )


def briefs(row: HandoffStatusV1) -> tuple[Brief, ...]:
    """The running clocks of a row."""
    out = []
    for c in row.clocks:
        if c.stage not in _RUNNING:
            continue
        warnings = [to_us(at) for at in c.warnings_at if at is not None]
        out.append(
            Brief(
                clock=c.clock,
                deadline=None if c.deadline is None else to_us(c.deadline),
                missed=c.outcome is Outcome.MISSED,
                paused=c.stage is ClockStage.PAUSED,
                target=round(c.target_seconds * US),
                business=round((c.elapsed_business_seconds or 0.0) * US),
                first_warning=min(warnings) if warnings else None,
            )
        )
    return tuple(out)


def listed(briefs: tuple[Brief, ...], state: HandoffState, view: str, now: int) -> Brief | None:
    """The clock that puts a handoff in a list view, or None if it does not belong there.

    open: the handoff is expected, open or returned (its most urgent running clock, if any);
    at-risk: a running clock has reached a warning threshold and is not overdue; overdue: a
    running clock is past its deadline.
    """
    if view == "overdue":
        late = [b for b in briefs if b.overdue(now)]
        return min(late, key=lambda b: b.deadline or 0, default=None)
    if view == "at-risk":
        risky = [b for b in briefs if b.at_risk(now)]
        return min(risky, key=lambda b: b.deadline or NO_DEADLINE, default=None)
    if state in OPEN_STATES and briefs:
        return min(briefs, key=lambda b: b.deadline if b.deadline is not None else NO_DEADLINE)
    return None


def urgency(briefs: tuple[Brief, ...]) -> int:
    """The earliest running deadline (what open lists are sorted by)."""
    return min((b.deadline for b in briefs if b.deadline is not None), default=NO_DEADLINE)


@dataclass(frozen=True, slots=True)
class ClockNow:
    """One clock of a row, as of now."""

    status: ClockStatusV1
    outcome: Outcome | None
    elapsed_business: int
    elapsed_wall: int
    paused_business: int

    @property
    def target(self) -> int:
        """The business time allowed (microseconds)."""
        return round(self.status.target_seconds * US)

    @property
    def remaining(self) -> int:
        """Business time left before the deadline (negative once overdue)."""
        return self.target - self.elapsed_business

    @property
    def used_ratio(self) -> float:
        """Business time used / target."""
        return round(self.elapsed_business / self.target, 4) if self.target else 0.0

    def warnings_passed(self, warnings: tuple[int, ...]) -> list[int]:
        """The thresholds (%) reached: by now while the clock runs, by its stop once it has
        stopped (a clock met at 9 % of its target reached none)."""
        return [w for w in warnings if self.elapsed_business >= self.target * w // 100]


def clock_now(
    clock: ClockStatusV1, as_of: int, now: int, calendar: BusinessCalendar | None
) -> ClockNow:
    """A clock of a row brought from the row's as_of to now."""
    business = round((clock.elapsed_business_seconds or 0.0) * US)
    wall = round((clock.elapsed_wall_seconds or 0.0) * US)
    paused = round((clock.paused_business_seconds or 0.0) * US)
    outcome = clock.outcome
    if clock.stage in _RUNNING:
        more = gained(as_of, now, calendar)
        if clock.stage is ClockStage.PAUSED:
            paused += more
        else:
            business += more
        wall += max(now - as_of, 0)
        if outcome is None and clock.deadline is not None and now > to_us(clock.deadline):
            outcome = Outcome.MISSED
    return ClockNow(clock, outcome, business, wall, paused)


@dataclass(frozen=True, slots=True)
class StatusNow:
    """A row as of now: its clocks, and whether it breached."""

    row: HandoffStatusV1
    now: int
    clocks: list[ClockNow]

    @property
    def breached_cycles(self) -> set[int]:
        """Cycles with a missed clock."""
        return {c.status.cycle for c in self.clocks if c.outcome is Outcome.MISSED}

    @property
    def breached(self) -> bool:
        """A clock of the last cycle missed its target."""
        last = self.row.cycles[-1].cycle if self.row.cycles else 1
        return last in self.breached_cycles

    @property
    def ever_breached(self) -> bool:
        """A clock of any cycle missed its target."""
        return bool(self.breached_cycles)


def status_now(row: HandoffStatusV1, now: int, calendar: BusinessCalendar | None) -> StatusNow:
    """A row brought to now."""
    as_of = to_us(row.as_of)
    return StatusNow(row, now, [clock_now(c, as_of, now, calendar) for c in row.clocks])
