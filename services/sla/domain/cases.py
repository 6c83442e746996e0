"""A case across teams: who held it how long, which handoffs made it late, ping-pong.

ServiceNow's "breakdown by assignment", per receiving team, computed from the handoffs of one
case_id. Two kinds of return are told apart, as in the BPI Challenge 2013 literature:
- ping-pong: an immediate return, A -> B -> A (the handoff right after A -> B goes back to A);
- a return to a team the case had left earlier, however long ago (A -> B -> C -> A).
Every ping-pong is also a return; not every return is a ping-pong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contracts import ClockName


@dataclass(frozen=True, slots=True)
class CaseHandoff:
    """One handoff of a case, as the case view needs it (instants in microseconds)."""

    handoff_id: str
    from_team: str
    to_team: str
    cycles: tuple[tuple[int, int | None], ...]
    """(start, end) of each delivery to the receiver; end None while it holds the case."""
    held_business: int
    """Business time the receiver held it (its resolution clocks, pauses included)."""
    missed: tuple[ClockName, ...]
    first_at: int
    """Its earliest instant (first cycle's start, else its first event)."""


@dataclass(slots=True)
class TeamShare:
    team: str
    held_wall_us: int = 0
    held_business_us: int = 0
    handoffs: int = 0
    late_handoffs: int = 0


@dataclass(frozen=True, slots=True)
class Return:
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
    ping_pongs: list[Return] = field(default_factory=list)
    """Immediate returns: A -> B followed by B -> A."""
    returns: list[Return] = field(default_factory=list)
    """Handoffs to a team the case had left before (ping-pongs included)."""


def case_view(case_id: str, items: list[CaseHandoff], now: int) -> CaseView:
    """Attribution of a case's time to the teams that held it, its late handoffs, returns."""
    ordered = sorted(items, key=lambda i: (i.first_at, i.handoff_id))
    shares: dict[str, TeamShare] = {}
    path: list[str] = []
    late: list[tuple[str, list[ClockName]]] = []
    ping_pongs: list[Return] = []
    returns: list[Return] = []
    ends: list[int] = []
    open_case = False
    previous: CaseHandoff | None = None
    for item in ordered:
        share = shares.setdefault(item.to_team, TeamShare(item.to_team))
        share.handoffs += 1
        for start, end in item.cycles:
            open_case |= end is None
            stop = end if end is not None else now
            ends.append(stop)
            share.held_wall_us += max(stop - start, 0)
        share.held_business_us += item.held_business
        if item.missed:
            share.late_handoffs += 1
            late.append((item.handoff_id, list(item.missed)))
        if not path or path[-1] != item.from_team:
            path.append(item.from_team)
        back = Return(item.handoff_id, item.from_team, item.to_team)
        if item.to_team in path[:-1]:
            returns.append(back)
        if (
            previous is not None
            and previous.to_team == item.from_team
            and previous.from_team == item.to_team
        ):
            ping_pongs.append(back)
        path.append(item.to_team)
        previous = item
    started = min((i.first_at for i in ordered), default=now)
    return CaseView(
        case_id=case_id,
        started_at=started,
        ended_at=None if open_case or not ends else max(ends),
        path=path,
        handoffs=ordered,
        teams=sorted(shares.values(), key=lambda s: -s.held_wall_us),
        late=late,
        ping_pongs=ping_pongs,
        returns=returns,
    )
