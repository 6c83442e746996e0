"""Read models of a handoff's clocks for the API: which clock puts a handoff in a list view."""

from __future__ import annotations

from datetime import datetime

from shared.calendar import from_us
from shared.events import HandoffState, Outcome
from sla.domain.clocks import ClockView, Evaluation

US = 1_000_000


def optional_time(value: int | None) -> datetime | None:
    """Microseconds since the epoch as a UTC datetime, None stays None."""
    return None if value is None else from_us(value)


def warnings_passed(clock: ClockView, warnings: tuple[int, ...]) -> list[int]:
    """The warning thresholds (%) a clock's used time reached: by now while it runs, by the
    moment it stopped once it has (a clock met at 9 % of its target reached none)."""
    return [pct for pct in warnings if clock.reached(pct)]


def listed_clock(evaluation: Evaluation, view: str, now: int) -> ClockView | None:
    """The clock that puts a handoff in a list view, or None if it does not belong there.

    open: the handoff is expected, open or returned; at-risk: a running clock has crossed a
    warning threshold and is not yet missed; overdue: a running clock is past its deadline.
    """
    running = [c for c in evaluation.clocks if c.running]
    if view == "overdue":
        late = [c for c in running if c.outcome is Outcome.MISSED]
        return min(late, key=lambda c: c.deadline or 0, default=None)
    if view == "at-risk":
        risky = [
            c
            for c in running
            if c.outcome is None and any(at is not None and at <= now for _, at in c.thresholds)
        ]
        return max(risky, key=lambda c: c.elapsed_business / (c.target or 1), default=None)
    if evaluation.state in (HandoffState.EXPECTED, HandoffState.OPEN, HandoffState.RETURNED):
        if running:
            return min(running, key=lambda c: c.deadline if c.deadline is not None else 1 << 62)
        return evaluation.clocks[-1] if evaluation.clocks else None
    return None
