"""Read models of a handoff's clocks: the public status row and the details the API shows."""

from __future__ import annotations

from datetime import datetime

from shared.events import ClockStatusV1, HandoffState, HandoffStatusV1, Outcome
from sla.domain.calendar import from_us
from sla.domain.clocks import ClockView, Evaluation
from sla.domain.handoff import Handoff

US = 1_000_000


def optional_time(value: int | None) -> datetime | None:
    """Microseconds since the epoch as a UTC datetime, None stays None."""
    return None if value is None else from_us(value)


def status_of(
    handoff: Handoff, evaluation: Evaluation, route_id: str, version: int
) -> HandoffStatusV1:
    """The status row other services materialise (metrics' open and overdue gauges)."""
    head = handoff.head
    assert head is not None
    return HandoffStatusV1.model_validate(
        {
            "case_id": handoff.case_id,
            "kind": head.kind,
            "from": head.from_process,
            "to": head.to_process,
            "priority": evaluation.priority,
            "state": evaluation.state,
            "route_id": route_id,
            "standard_version": version,
            "clocks": [
                ClockStatusV1(
                    clock=c.name,
                    cycle=c.cycle,
                    stage=c.stage,
                    outcome=c.outcome,
                    started_at=from_us(c.start),
                    deadline=optional_time(c.deadline),
                    stopped_at=optional_time(c.stop if c.stop is not None else c.void_at),
                    target_seconds=c.target / US,
                )
                for c in evaluation.clocks
            ],
            "as_of": from_us(evaluation.now),
        }
    )


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
