"""The sla API's response models, built from the clock domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.calendar import from_us
from shared.contracts import ClockName, Priority, ServiceStandardV1
from shared.events import ClockStage, HandoffState, Outcome
from sla.domain.book import Held
from sla.domain.cases import CaseView
from sla.domain.clocks import ClockView
from sla.domain.facts import Fact
from sla.domain.views import US, optional_time, warnings_passed

View = Literal["open", "at-risk", "overdue"]


class ClockOut(BaseModel):
    clock: ClockName
    cycle: int
    priority: Priority
    stage: ClockStage
    outcome: Outcome | None = Field(description="met, missed, or null while undecided")
    breached: bool
    target_seconds: float = Field(description="business time allowed")
    started_at: datetime
    deadline: datetime | None = Field(description="null while paused before the deadline")
    stopped_at: datetime | None
    elapsed_business_seconds: float
    elapsed_wall_seconds: float
    paused_business_seconds: float
    remaining_business_seconds: float = Field(description="negative once overdue")
    used_ratio: float = Field(description="business elapsed / target")
    warnings_passed: list[int] = Field(description="warning thresholds (%) already crossed")

    @classmethod
    def of(cls, clock: ClockView, warnings: tuple[int, ...]) -> ClockOut:
        return cls(
            clock=clock.name,
            cycle=clock.cycle,
            priority=clock.priority,
            stage=clock.stage,
            outcome=clock.outcome,
            breached=clock.outcome is Outcome.MISSED,
            target_seconds=clock.target / US,
            started_at=from_us(clock.start),
            deadline=optional_time(clock.deadline),
            stopped_at=optional_time(clock.stop if clock.stop is not None else clock.void_at),
            elapsed_business_seconds=clock.elapsed_business / US,
            elapsed_wall_seconds=clock.elapsed_wall / US,
            paused_business_seconds=clock.paused_business / US,
            remaining_business_seconds=clock.remaining_business / US,
            used_ratio=round(clock.elapsed_business / clock.target, 4) if clock.target else 0.0,
            warnings_passed=warnings_passed(clock, warnings),
        )


class CycleOut(BaseModel):
    cycle: int
    started_at: datetime
    ended_at: datetime | None
    ended_by: str | None = Field(description="completed, rejected, cancelled or null")
    breached: bool


class EventOut(BaseModel):
    type: str
    occurred_at: datetime
    event_id: str

    @classmethod
    def of(cls, fact: Fact) -> EventOut:
        return cls(
            type=fact.type.name.lower(), occurred_at=from_us(fact.at), event_id=fact.event_id
        )


class StandardOut(BaseModel):
    route_id: str
    version: int
    calendar: str
    objective: float

    @classmethod
    def of(cls, standard: ServiceStandardV1) -> StandardOut:
        return cls(
            route_id=standard.route_id,
            version=standard.version,
            calendar=standard.calendar.id,
            objective=standard.objective,
        )


class HandoffOut(BaseModel):
    handoff_id: str
    case_id: str
    kind: str
    from_process: str = Field(serialization_alias="from")
    to_process: str = Field(serialization_alias="to")
    priority: Priority
    state: HandoffState
    standard: StandardOut
    breached: bool = Field(description="a clock of the last cycle missed its target")
    ever_breached: bool = Field(description="a clock of any cycle missed its target")
    clocks: list[ClockOut]
    cycles: list[CycleOut]
    history: list[EventOut]
    as_of: datetime


class PendingOut(BaseModel):
    """A handoff whose opening event has not arrived yet: its events wait for it."""

    handoff_id: str
    state: Literal["pending"] = "pending"
    history: list[EventOut]


class HandoffSummary(BaseModel):
    handoff_id: str
    case_id: str
    kind: str
    from_process: str = Field(serialization_alias="from")
    to_process: str = Field(serialization_alias="to")
    priority: Priority
    state: HandoffState
    clock: ClockName = Field(description="the clock that put it in this list")
    deadline: datetime | None
    used_ratio: float
    overdue_seconds: float = Field(description="wall time past the deadline, 0 if not overdue")

    @classmethod
    def of(cls, held: Held, clock: ClockView, now: int) -> HandoffSummary:
        late = clock.deadline is not None and now > clock.deadline
        return cls(
            handoff_id=held.handoff.handoff_id,
            case_id=held.handoff.case_id,
            kind=held.head.kind,
            from_process=held.head.from_process,
            to_process=held.head.to_process,
            priority=held.evaluation.priority,
            state=held.evaluation.state,
            clock=clock.name,
            deadline=optional_time(clock.deadline),
            used_ratio=round(clock.elapsed_business / (clock.target or 1), 4),
            overdue_seconds=(now - clock.deadline) / US if late and clock.deadline else 0.0,
        )


class HandoffList(BaseModel):
    view: View
    count: int
    truncated: bool
    items: list[HandoffSummary]


class TeamShareOut(BaseModel):
    team: str
    held_wall_seconds: float
    held_business_seconds: float
    share_of_wall_time: float
    handoffs: int
    late_handoffs: int


class LateOut(BaseModel):
    handoff_id: str
    clocks: list[ClockName]


class BounceOut(BaseModel):
    handoff_id: str
    from_process: str = Field(serialization_alias="from")
    to_process: str = Field(serialization_alias="to")


class CaseOut(BaseModel):
    case_id: str
    started_at: datetime
    ended_at: datetime | None
    end_to_end_wall_seconds: float
    path: list[str] = Field(description="teams in the order the case visited them")
    teams: list[TeamShareOut]
    late_handoffs: list[LateOut]
    ping_pong: bool
    bounces: list[BounceOut]
    handoffs: list[HandoffOut]


def handoff_out(held: Held) -> HandoffOut:
    """The full status of one handoff."""
    handoff, head, ev = held.handoff, held.head, held.evaluation
    cycles = []
    breached_by_cycle: dict[int, bool] = {}
    for clock in ev.clocks:
        if clock.outcome is Outcome.MISSED:
            breached_by_cycle[clock.cycle] = True
    for cycle in ev.cycles:
        cycles.append(
            CycleOut(
                cycle=cycle.number,
                started_at=from_us(cycle.start),
                ended_at=optional_time(cycle.end),
                ended_by=cycle.ended_by.name.lower() if cycle.ended_by is not None else None,
                breached=breached_by_cycle.get(cycle.number, False),
            )
        )
    last = ev.cycles[-1].number if ev.cycles else 1
    return HandoffOut(
        handoff_id=handoff.handoff_id,
        case_id=handoff.case_id,
        kind=head.kind,
        from_process=head.from_process,
        to_process=head.to_process,
        priority=ev.priority,
        state=ev.state,
        standard=StandardOut.of(held.standard),
        breached=breached_by_cycle.get(last, False),
        ever_breached=any(breached_by_cycle.values()),
        clocks=[ClockOut.of(c, held.standard.warnings) for c in ev.clocks],
        cycles=cycles,
        history=[EventOut.of(f) for f in handoff.facts],
        as_of=from_us(ev.now),
    )


def case_out(view: CaseView, now: int, handoffs: list[HandoffOut]) -> CaseOut:
    """The attribution view of a case."""
    end = view.ended_at if view.ended_at is not None else now
    total_wall = sum(t.held_wall_us for t in view.teams) or 1
    return CaseOut(
        case_id=view.case_id,
        started_at=from_us(view.started_at),
        ended_at=optional_time(view.ended_at),
        end_to_end_wall_seconds=max(end - view.started_at, 0) / US,
        path=view.path,
        teams=[
            TeamShareOut(
                team=t.team,
                held_wall_seconds=t.held_wall_us / US,
                held_business_seconds=t.held_business_us / US,
                share_of_wall_time=round(t.held_wall_us / total_wall, 4),
                handoffs=t.handoffs,
                late_handoffs=t.late_handoffs,
            )
            for t in view.teams
        ],
        late_handoffs=[LateOut(handoff_id=h, clocks=c) for h, c in view.late],
        ping_pong=bool(view.bounces),
        bounces=[
            BounceOut(handoff_id=b.handoff_id, from_process=b.from_team, to_process=b.to_team)
            for b in view.bounces
        ],
        handoffs=handoffs,
    )
