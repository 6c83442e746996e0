"""sla's status API: one handoff with all its clocks, lists, and the case view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

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
    StandardOut,
    View,
    case_out,
    handoff_out,
)
from sla.domain.book import Book
from sla.domain.calendar import to_us
from sla.domain.cases import CaseHandoff, case_view
from sla.domain.handoff import Handoff
from sla.domain.views import US, listed_clock, optional_time

router = APIRouter(prefix="/v1", tags=["sla"])


def _engine(request: Request) -> SlaEngine:
    engine: SlaEngine = request.app.state.engine
    return engine


def _now(request: Request) -> int:
    return to_us(request.app.state.clock.now())


def _standard(book: Book, handoff: Handoff) -> StandardOut:
    assert handoff.head is not None
    standard = book.standards[handoff.head.standard_key]
    return StandardOut(
        route_id=standard.route_id,
        version=standard.version,
        calendar=standard.calendar.id,
        objective=standard.objective,
    )


def _not_here(engine: SlaEngine, what: str) -> NotFound:
    held = sorted(tp.partition for tp in engine.workers)
    return NotFound(f"{what} is not known to this sla instance (it holds partitions {held})")


@router.get("/handoffs/{handoff_id}", response_model=HandoffOut | PendingOut)
async def get_handoff(handoff_id: str, request: Request) -> HandoffOut | PendingOut:
    """A handoff with every clock of every cycle, and its event history."""
    engine = _engine(request)
    found = engine.find(handoff_id)
    if found is None:
        raise _not_here(engine, f"handoff {handoff_id!r}")
    worker, handoff = found
    evaluation = worker.book.evaluate(handoff, _now(request))
    if evaluation is None or handoff.head is None:
        return PendingOut(handoff_id=handoff_id, history=[EventOut.of(f) for f in handoff.facts])
    return handoff_out(handoff, handoff.head, evaluation, _standard(worker.book, handoff))


@router.get("/handoffs", response_model=HandoffList)
async def list_handoffs(
    request: Request,
    view: View = "open",
    from_process: Annotated[str | None, Query(alias="from")] = None,
    to_process: Annotated[str | None, Query(alias="to")] = None,
    kind: str | None = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HandoffList:
    """Open, at-risk (past a warning threshold) or overdue handoffs, most urgent first."""
    engine = _engine(request)
    now = _now(request)
    found: list[HandoffSummary] = []
    for worker in list(engine.workers.values()):
        for handoff in list(worker.handoffs()):
            head = handoff.head
            if head is None:
                continue
            if (
                (from_process and head.from_process != from_process)
                or (to_process and head.to_process != to_process)
                or (kind and head.kind != kind)
            ):
                continue
            evaluation = worker.book.evaluate(handoff, now)
            if evaluation is None or (priority and evaluation.priority != priority):
                continue
            clock = listed_clock(evaluation, view, now)
            if clock is None:
                continue
            overdue = (now - clock.deadline) / US if clock.deadline and now > clock.deadline else 0
            found.append(
                HandoffSummary(
                    handoff_id=handoff.handoff_id,
                    case_id=handoff.case_id,
                    kind=head.kind,
                    from_process=head.from_process,
                    to_process=head.to_process,
                    priority=evaluation.priority,
                    state=evaluation.state,
                    clock=clock.name,
                    deadline=optional_time(clock.deadline),
                    used_ratio=round(clock.elapsed_business / (clock.target or 1), 4),
                    overdue_seconds=overdue,
                )
            )
    found.sort(key=lambda s: (s.deadline is None, s.deadline or 0, s.handoff_id))
    return HandoffList(
        view=view, count=len(found), truncated=len(found) > limit, items=found[:limit]
    )


@router.get("/cases/{case_id}", response_model=CaseOut)
async def get_case(case_id: str, request: Request) -> CaseOut:
    """Which teams held a case how long, which handoffs made it late, and ping-pong."""
    engine = _engine(request)
    now = _now(request)
    items: list[CaseHandoff] = []
    outs: dict[str, HandoffOut] = {}
    for worker in list(engine.workers.values()):
        for handoff in list(worker.handoffs()):
            head = handoff.head
            if head is None or handoff.case_id != case_id:
                continue
            evaluation = worker.book.evaluate(handoff, now)
            if evaluation is None:
                continue
            first = handoff.facts[0].at if handoff.facts else now
            items.append(CaseHandoff(handoff.handoff_id, head, evaluation, first))
            outs[handoff.handoff_id] = handoff_out(
                handoff, head, evaluation, _standard(worker.book, handoff)
            )
    if not items:
        raise _not_here(engine, f"case {case_id!r}")
    view = case_view(case_id, items, now)
    return case_out(view, now, [outs[i.handoff_id] for i in view.handoffs])
