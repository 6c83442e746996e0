"""sla's status API: one handoff with all its clocks, lists, and the case view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from shared.auth import Reader
from shared.contracts import Priority
from shared.http import NotFound
from sla.adapters.engine import SlaEngine
from sla.api.schemas import (
    CaseOut,
    EventOut,
    HandoffList,
    HandoffOut,
    HandoffSummary,
    PendingOut,
    View,
    case_out,
    handoff_out,
)
from sla.domain.calendar import to_us
from sla.domain.cases import CaseHandoff, case_view
from sla.domain.handoff import Handoff
from sla.domain.views import listed_clock

router = APIRouter(prefix="/v1", tags=["sla"])


def _engine(request: Request) -> SlaEngine:
    engine: SlaEngine = request.app.state.engine
    return engine


def _now(request: Request) -> int:
    return to_us(request.app.state.clock.now())


def _not_here(engine: SlaEngine, what: str) -> NotFound:
    held = sorted(tp.partition for tp in engine.workers)
    return NotFound(f"{what} is not known to this sla instance (it holds partitions {held})")


_NOT_HELD: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not known to this sla instance (or closed and retired)"}
}


@router.get(
    "/handoffs/{handoff_id:path}", response_model=HandoffOut | PendingOut, responses=_NOT_HELD
)
async def get_handoff(
    handoff_id: Annotated[str, Path(examples=["demo-1"])], request: Request, caller: Reader
) -> HandoffOut | PendingOut:
    """A handoff with every clock of every cycle, and its event history."""
    engine = _engine(request)
    found = engine.find(handoff_id)
    if found is None:
        raise _not_here(engine, f"handoff {handoff_id!r}")
    worker, handoff = found
    held = worker.book.held(handoff, _now(request))
    if held is None:
        return PendingOut(handoff_id=handoff_id, history=[EventOut.of(f) for f in handoff.facts])
    return handoff_out(held)


@router.get("/handoffs", response_model=HandoffList)
async def list_handoffs(
    request: Request,
    caller: Reader,
    view: View = "open",
    from_process: Annotated[str | None, Query(alias="from")] = None,
    to_process: Annotated[str | None, Query(alias="to")] = None,
    kind: str | None = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HandoffList:
    """Open, at-risk (past a warning threshold) or overdue handoffs, most urgent first."""
    now = _now(request)

    def wanted(handoff: Handoff) -> bool:
        head = handoff.head
        assert head is not None
        return not (
            (from_process and head.from_process != from_process)
            or (to_process and head.to_process != to_process)
            or (kind and head.kind != kind)
        )

    found: list[HandoffSummary] = []
    for held in _engine(request).held(now, wanted):
        if priority and held.evaluation.priority != priority:
            continue
        clock = listed_clock(held.evaluation, view, now)
        if clock is not None:
            found.append(HandoffSummary.of(held, clock, now))
    found.sort(key=lambda s: (s.deadline is None, s.deadline or 0, s.handoff_id))
    return HandoffList(
        view=view, count=len(found), truncated=len(found) > limit, items=found[:limit]
    )


@router.get("/cases/{case_id:path}", response_model=CaseOut, responses=_NOT_HELD)
async def get_case(
    case_id: Annotated[str, Path(examples=["INC-1001"])], request: Request, caller: Reader
) -> CaseOut:
    """Which teams held a case how long, which handoffs made it late, and ping-pong."""
    engine = _engine(request)
    now = _now(request)
    helds = {h.handoff.handoff_id: h for h in engine.held(now, lambda h: h.case_id == case_id)}
    items = [CaseHandoff(i, h.head, h.evaluation, h.handoff.facts[0].at) for i, h in helds.items()]
    if not items:
        raise _not_here(engine, f"case {case_id!r}")
    view = case_view(case_id, items, now)
    return case_out(view, now, [handoff_out(helds[i.handoff_id]) for i in view.handoffs])
