"""sla's status API: one handoff with all its clocks, lists, and the case view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from shared.contracts import Priority
from shared.http import NotFound
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
from sla.queries import Filters, Pending, SlaQueries

router = APIRouter(prefix="/v1", tags=["sla"])


def _queries(request: Request) -> SlaQueries:
    queries: SlaQueries = request.app.state.queries
    return queries


def _not_here(queries: SlaQueries, what: str) -> NotFound:
    held = queries.partitions()
    return NotFound(f"{what} is not known to this sla instance (it holds partitions {held})")


@router.get("/handoffs/{handoff_id}", response_model=HandoffOut | PendingOut)
async def get_handoff(handoff_id: str, request: Request) -> HandoffOut | PendingOut:
    """A handoff with every clock of every cycle, and its event history."""
    queries = _queries(request)
    found = queries.handoff(handoff_id)
    if found is None:
        raise _not_here(queries, f"handoff {handoff_id!r}")
    if isinstance(found, Pending):
        return PendingOut(handoff_id=handoff_id, history=[EventOut.of(f) for f in found.facts])
    return handoff_out(found)


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
    queries = _queries(request)
    filters = Filters(from_process, to_process, kind, priority)
    count, items = queries.listed(view, filters, limit)
    now = queries.now()
    return HandoffList(
        view=view,
        count=count,
        truncated=count > limit,
        items=[HandoffSummary.of(i.held, i.clock, now) for i in items],
    )


@router.get("/cases/{case_id}", response_model=CaseOut)
async def get_case(case_id: str, request: Request) -> CaseOut:
    """Which teams held a case how long, which handoffs made it late, and ping-pong."""
    queries = _queries(request)
    found = queries.case(case_id)
    if found is None:
        raise _not_here(queries, f"case {case_id!r}")
    view, helds = found
    handoffs = [handoff_out(helds[i.handoff_id]) for i in view.handoffs]
    return case_out(view, queries.now(), handoffs)
