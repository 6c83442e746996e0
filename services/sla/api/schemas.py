"""The sla API's response models, built from status rows brought to now."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.calendar import from_us
from shared.contracts import ClockName, Priority
from shared.events import ClockStage, EventRecordV1, HandoffState, Outcome
from shared.openapi import model_examples
from sla.api import examples
from sla.domain.cases import CaseView
from sla.domain.status import ClockNow, StatusNow
from sla.domain.views import US, optional_time
from sla.queries import Closed, Listed

View = Literal["open", "at-risk", "overdue"]


class ClockOut(BaseModel):
    clock: ClockName
    cycle: int
    priority: Priority | None
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
    warnings_passed: list[int] = Field(
        description="warning thresholds (%) reached: by now, or by the stop once stopped"
    )

    @classmethod
    def of(cls, clock: ClockNow, warnings: tuple[int, ...]) -> ClockOut:
        status = clock.status
        return cls(
            clock=status.clock,
            cycle=status.cycle,
            priority=status.priority,
            stage=status.stage,
            outcome=clock.outcome,
            breached=clock.outcome is Outcome.MISSED,
            target_seconds=status.target_seconds,
            started_at=status.started_at,
            deadline=status.deadline,
            stopped_at=status.stopped_at,
            elapsed_business_seconds=clock.elapsed_business / US,
            elapsed_wall_seconds=clock.elapsed_wall / US,
            paused_business_seconds=clock.paused_business / US,
            remaining_business_seconds=clock.remaining / US,
            used_ratio=clock.used_ratio,
            warnings_passed=clock.warnings_passed(warnings),
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
    def of(cls, event: EventRecordV1) -> EventOut:
        return cls(type=event.type, occurred_at=event.occurred_at, event_id=event.event_id)


class StandardOut(BaseModel):
    route_id: str
    version: int
    calendar: str | None
    objective: float | None


class HandoffOut(BaseModel):
    # built by field name here, read back by alias ("from", "to") by the typed client
    model_config = ConfigDict(
        populate_by_name=True, json_schema_extra=model_examples(examples.HANDOFF)
    )

    handoff_id: str
    case_id: str
    kind: str
    from_process: str = Field(alias="from")
    to_process: str = Field(alias="to")
    priority: Priority
    state: HandoffState
    standard: StandardOut
    breached: bool = Field(description="a clock of the last cycle missed its target")
    ever_breached: bool = Field(description="a clock of any cycle missed its target")
    clocks: list[ClockOut]
    cycles: list[CycleOut]
    history: list[EventOut]
    closed_at: datetime | None = Field(description="when it was completed or cancelled")
    as_of: datetime = Field(description="the instant the answer is computed for")
    updated_at: datetime = Field(description="when its owner last wrote its status")


def _summary(item: Listed | Closed) -> dict[str, Any]:
    """What every list item says about its handoff."""
    entry = item.entry
    return {
        "handoff_id": item.handoff_id,
        "case_id": entry.case_id,
        "kind": entry.kind,
        "from_process": entry.pair[0],
        "to_process": entry.pair[1],
        "priority": Priority(entry.priority),
        "state": entry.state,
    }


class HandoffSummary(BaseModel):
    # built by field name here, read back by alias ("from", "to") by the typed client
    model_config = ConfigDict(populate_by_name=True)

    handoff_id: str
    case_id: str
    kind: str
    from_process: str = Field(alias="from")
    to_process: str = Field(alias="to")
    priority: Priority
    state: HandoffState
    clock: ClockName = Field(description="the clock that put it in this list")
    deadline: datetime | None
    used_ratio: float
    overdue_seconds: float = Field(description="wall time past the deadline, 0 if not overdue")

    @classmethod
    def of(cls, item: Listed, now: int) -> HandoffSummary:
        deadline = item.deadline
        late = deadline is not None and now > deadline
        return cls(
            **_summary(item),
            clock=item.clock.clock,
            deadline=optional_time(deadline),
            used_ratio=item.used_ratio,
            overdue_seconds=(now - deadline) / US if late and deadline is not None else 0.0,
        )


class HandoffList(BaseModel):
    model_config = ConfigDict(json_schema_extra=model_examples(examples.OVERDUE))

    view: View
    count: int
    truncated: bool
    items: list[HandoffSummary]


class ClosedSummary(BaseModel):
    # built by field name here, read back by alias ("from", "to") by the typed client
    model_config = ConfigDict(populate_by_name=True)

    handoff_id: str
    case_id: str
    kind: str
    from_process: str = Field(alias="from")
    to_process: str = Field(alias="to")
    priority: Priority
    state: HandoffState
    closed_at: datetime
    outcome: Outcome = Field(description="missed if any clock missed its target, else met")

    @classmethod
    def of(cls, item: Closed) -> ClosedSummary:
        return cls(
            **_summary(item),
            closed_at=from_us(item.closed_at),
            outcome=Outcome.MISSED if item.entry.missed else Outcome.MET,
        )


class ClosedList(BaseModel):
    model_config = ConfigDict(json_schema_extra=model_examples(examples.CLOSED))

    view: Literal["closed"] = "closed"
    items: list[ClosedSummary]
    next: str | None = Field(description="pass as `cursor` for the next page; null: last page")


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


class ReturnOut(BaseModel):
    # built by field name here, read back by alias ("from", "to") by the typed client
    model_config = ConfigDict(populate_by_name=True)

    handoff_id: str
    from_process: str = Field(alias="from")
    to_process: str = Field(alias="to")


class CaseOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=model_examples(examples.CASE))

    case_id: str
    started_at: datetime
    ended_at: datetime | None
    end_to_end_wall_seconds: float
    path: list[str] = Field(description="teams in the order the case visited them")
    teams: list[TeamShareOut]
    late_handoffs: list[LateOut]
    ping_pong: bool = Field(description="an immediate return: A -> B -> A")
    ping_pongs: list[ReturnOut] = Field(description="the handoffs that went straight back")
    returned: bool = Field(description="handed to a team the case had left before")
    bounces: list[ReturnOut] = Field(
        description="every handoff to a team the case had left before (ping-pongs included)"
    )
    handoffs: list[HandoffOut]


def handoff_out(handoff_id: str, status: StatusNow) -> HandoffOut:
    """The full status of one handoff."""
    row = status.row
    breached = status.breached_cycles
    warnings = row.warnings or ()
    return HandoffOut(
        handoff_id=handoff_id,
        case_id=row.case_id,
        kind=row.kind,
        from_process=row.from_process,
        to_process=row.to_process,
        priority=row.priority,
        state=row.state,
        standard=StandardOut(
            route_id=row.route_id,
            version=row.standard_version,
            calendar=row.calendar.id if row.calendar is not None else None,
            objective=row.objective,
        ),
        breached=status.breached,
        ever_breached=status.ever_breached,
        clocks=[ClockOut.of(c, warnings) for c in status.clocks],
        cycles=[
            CycleOut(
                cycle=c.cycle,
                started_at=c.started_at,
                ended_at=c.ended_at,
                ended_by=c.ended_by,
                breached=c.cycle in breached,
            )
            for c in row.cycles
        ],
        history=[EventOut.of(e) for e in row.history],
        closed_at=row.closed_at,
        as_of=from_us(status.now),
        updated_at=row.as_of,
    )


def case_out(view: CaseView, now: int, handoffs: list[HandoffOut]) -> CaseOut:
    """The attribution view of a case."""
    end = view.ended_at if view.ended_at is not None else now
    total_wall = sum(t.held_wall_us for t in view.teams) or 1

    def returns(items: list) -> list[ReturnOut]:  # type: ignore[type-arg]
        return [
            ReturnOut(handoff_id=r.handoff_id, from_process=r.from_team, to_process=r.to_team)
            for r in items
        ]

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
        ping_pong=bool(view.ping_pongs),
        ping_pongs=returns(view.ping_pongs),
        returned=bool(view.returns),
        bounces=returns(view.returns),
        handoffs=handoffs,
    )
