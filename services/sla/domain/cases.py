"""A case across teams: who held it how long, which handoffs made it late, ping-pong.

ServiceNow's "breakdown by assignment", per receiving team, computed from the handoffs of one
case_id. A bounce (ping-pong) is a handoff to a team the case had already left (A -> B -> A).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contracts import ClockName
from shared.events import Outcome
from sla.domain.clocks import Evaluation
from sla.domain.handoff import Head


@dataclass(frozen=True, slots=True)
class CaseHandoff:
    handoff_id: str
    head: Head
    evaluation: Evaluation
    first_fact_at: int


@dataclass(slots=True)
class TeamShare:
    team: str
    held_wall_us: int = 0
    held_business_us: int = 0
    handoffs: int = 0
    late_handoffs: int = 0


@dataclass(frozen=True, slots=True)
class Bounce:
    handoff_id: str
    from_team: str
    to_team: str
    """A team the case had already left."""


@dataclass(slots=True)
class CaseView:
    case_id: str
    started_at: int
    ended_at: int | None
    path: list[str]
    handoffs: list[CaseHandoff]
    teams: list[TeamShare]
    late: list[tuple[str, list[ClockName]]] = field(default_factory=list)
    bounces: list[Bounce] = field(default_factory=list)


def _first_start(item: CaseHandoff) -> int:
    ev = item.evaluation
    starts = [c.start for c in ev.cycles] + [c.start for c in ev.clocks]
    return min(starts) if starts else item.first_fact_at


def case_view(case_id: str, items: list[CaseHandoff], now: int) -> CaseView:
    """Attribution of a case's time to the teams that held it, its late handoffs, bounces."""
    ordered = sorted(items, key=lambda i: (_first_start(i), i.handoff_id))
    shares: dict[str, TeamShare] = {}
    path: list[str] = []
    late: list[tuple[str, list[ClockName]]] = []
    bounces: list[Bounce] = []
    ends: list[int] = []
    open_case = False
    for item in ordered:
        head, ev = item.head, item.evaluation
        share = shares.setdefault(head.to_process, TeamShare(head.to_process))
        share.handoffs += 1
        for cycle in ev.cycles:
            end = cycle.end if cycle.end is not None else now
            open_case |= cycle.end is None
            ends.append(end)
            share.held_wall_us += max(end - cycle.start, 0)
        for clock in ev.clocks:
            if clock.name is ClockName.RESOLUTION:
                share.held_business_us += clock.elapsed_business + clock.paused_business
        missed = [c.name for c in ev.clocks if c.outcome is Outcome.MISSED]
        if missed:
            share.late_handoffs += 1
            late.append((item.handoff_id, missed))
        if not path or path[-1] != head.from_process:
            path.append(head.from_process)
        if head.to_process in path[:-1]:
            bounces.append(Bounce(item.handoff_id, head.from_process, head.to_process))
        path.append(head.to_process)
    started = min((_first_start(i) for i in ordered), default=now)
    return CaseView(
        case_id=case_id,
        started_at=started,
        ended_at=None if open_case or not ends else max(ends),
        path=path,
        handoffs=ordered,
        teams=sorted(shares.values(), key=lambda s: -s.held_wall_us),
        late=late,
        bounces=bounces,
    )
