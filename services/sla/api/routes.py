"""sla's status API: one handoff with all its clocks, lists, and the case view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from shared.auth import Reader
from shared.calendar import to_us
from shared.contracts import Priority, QueryInstant
from shared.events import Outcome
from shared.http import FieldError, NotFound, ProblemError
from sla.api.schemas import (
    CaseOut,
    ClosedList,
    ClosedSummary,
    HandoffList,
    HandoffOut,
    HandoffSummary,
    View,
    case_out,
    handoff_out,
)
from sla.queries import BadCursor, Filters, SlaQueries

router = APIRouter(prefix="/v1", tags=["sla"])


class InvalidQuery(ProblemError):
    """422: a query parameter is well-formed but unusable."""

    status = 422
    title = "Invalid query"


def _queries(request: Request) -> SlaQueries:
    queries: SlaQueries = request.app.state.queries
    return queries


_UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not known to sla (not yet opened, or forgotten after its retention)"}
}


@router.get("/handoffs/{handoff_id:path}", response_model=HandoffOut, responses=_UNKNOWN)
async def get_handoff(
    handoff_id: Annotated[str, Path(examples=["demo-1"])], request: Request, caller: Reader
) -> HandoffOut:
    """A handoff with every clock of every cycle, and its event history (any sla instance
    answers for any handoff)."""
    found = _queries(request).handoff(handoff_id)
    if found is None:
        raise NotFound(
            f"handoff {handoff_id!r} is not known to sla (not yet opened, or forgotten after "
            "its retention)"
        )
    return handoff_out(handoff_id, found)


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
    queries = _queries(request)
    filters = Filters(from_process, to_process, kind, priority)
    count, items = queries.listed(view, filters, limit)
    now = queries.now()
    return HandoffList(
        view=view,
        count=count,
        truncated=count > limit,
        items=[HandoffSummary.of(i, now) for i in items],
    )


@router.get("/closed", response_model=ClosedList)
async def list_closed(
    request: Request,
    caller: Reader,
    from_process: Annotated[str | None, Query(alias="from")] = None,
    to_process: Annotated[str | None, Query(alias="to")] = None,
    kind: str | None = None,
    priority: Priority | None = None,
    since: Annotated[QueryInstant | None, Query(description="closed at or after")] = None,
    until: Annotated[QueryInstant | None, Query(description="closed before")] = None,
    outcome: Annotated[
        Outcome | None, Query(description="missed: some clock missed its target; met: none")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ClosedList:
    """Completed and cancelled handoffs (while sla keeps them), latest first, a page at a time:
    by pair, period and outcome."""
    try:
        items, after = _queries(request).closed(
            Filters(from_process, to_process, kind, priority),
            since=None if since is None else to_us(since),
            until=None if until is None else to_us(until),
            outcome=outcome,
            cursor=cursor,
            limit=limit,
        )
    except BadCursor as exc:
        raise InvalidQuery(
            "invalid cursor", [FieldError(field="cursor", reason=str(exc))]
        ) from None
    return ClosedList(items=[ClosedSummary.of(i) for i in items], next=after)


@router.get("/cases/{case_id:path}", response_model=CaseOut, responses=_UNKNOWN)
async def get_case(
    case_id: Annotated[str, Path(examples=["INC-1001"])], request: Request, caller: Reader
) -> CaseOut:
    """Which teams held a case how long, which handoffs made it late, and ping-pong."""
    queries = _queries(request)
    found = queries.case(case_id)
    if found is None:
        raise NotFound(f"case {case_id!r} is not known to sla")
    view, statuses = found
    handoffs = [handoff_out(i.handoff_id, statuses[i.handoff_id]) for i in view.handoffs]
    return case_out(view, queries.now(), handoffs)
