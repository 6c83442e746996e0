"""metrics' report API: reports over the handoff history (JSON, or CSV by `Accept: text/csv`),
the management-review page (HTML), and the process-mining exports (CSV, XES, OCEL 2.0).

Every route needs a key with the read scope. Queries run on worker threads (DuckDB blocks);
exports stream, chunk by chunk, straight from the store's cursor.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from metrics.api import examples
from metrics.api.deps import ClockDep, QueriesDep, SettingsDep
from metrics.api.review import review_html
from metrics.domain.eventlog import csv_chunks, ocel_chunks, xes_chunks
from metrics.domain.reports import (
    MAX_PAGE,
    Grouping,
    InvalidReportQuery,
    LateList,
    Report,
    ReportFilter,
    Window,
    late_csv,
    report_csv,
    resolve_window,
)
from shared.auth import Reader
from shared.contracts import EARLIEST_EVENT, LATEST_EVENT, ClockName, Priority
from shared.http import FieldError, NotFound, ProblemError
from shared.openapi import example

router = APIRouter(prefix="/v1", tags=["reports"])

CSV = "text/csv"


_OTHER_SHARD: dict[int | str, dict[str, Any]] = {
    404: {"description": "Served by metrics shard 0 only (this instance is another shard)"}
}


def _json_or_csv(json_example: Any, csv_example: str) -> dict[int | str, dict[str, Any]]:
    return {
        **_OTHER_SHARD,
        200: {
            "content": {
                "application/json": example(json_example),
                CSV: {"schema": {"type": "string"}, **example(csv_example)},
            },
            "description": "JSON, or CSV",
        },
    }


def _streamed(media: str, text: Any, description: str) -> dict[int | str, dict[str, Any]]:
    schema = {"type": "object"} if media == "application/json" else {"type": "string"}
    return {
        200: {"content": {media: {"schema": schema, **example(text)}}, "description": description}
    }


Name = Annotated[str | None, Query(max_length=100)]


class InvalidQuery(ProblemError):
    """422: a report parameter is unusable (the field and the reason are named)."""

    status = 422
    title = "Invalid report query"


def _invalid(exc: InvalidReportQuery) -> InvalidQuery:
    return InvalidQuery(str(exc), [FieldError(field=exc.field, reason=exc.reason)])


def _window(
    clock: ClockDep,
    settings: SettingsDep,
    month: Annotated[
        str | None, Query(max_length=7, description="a calendar month, e.g. 2026-11")
    ] = None,
    start: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="start: a date or ISO datetime"),
    ] = None,
    end: Annotated[
        str | None,
        Query(alias="to", max_length=40, description="end (exclusive): a date or ISO datetime"),
    ] = None,
    days: Annotated[int | None, Query(ge=1, le=3660, description="the last N days")] = None,
    tz: Annotated[
        str | None,
        Query(
            max_length=64,
            description="IANA time zone of months and dates (default: the "
            "service's METRICS_REPORT_TIMEZONE)",
        ),
    ] = None,
) -> tuple[dict[str, Any], str]:
    return {"month": month, "start": start, "end": end, "days": days}, (
        tz or settings.report_timezone
    )


WindowArgs = Annotated[tuple[dict[str, Any], str], Depends(_window)]


def window_of(args: WindowArgs, clock: ClockDep, *, everything_by_default: bool = False) -> Window:
    """The window asked for (default: the last 30 days, or all history for exports)."""
    given, tz = args
    try:
        if everything_by_default and all(v is None for v in given.values()):
            resolve_window(now=clock.now(), tz_name=tz)  # checks the time zone
            return Window(EARLIEST_EVENT, LATEST_EVENT, "all", tz)
        return resolve_window(now=clock.now(), tz_name=tz, **given)
    except InvalidReportQuery as exc:
        raise _invalid(exc) from None


def _filters(
    process: Annotated[
        str | None, Query(max_length=100, description="either end of the handoff")
    ] = None,
    supplier: Annotated[
        str | None, Query(max_length=100, description="the supplying process")
    ] = None,
    customer: Annotated[
        str | None, Query(max_length=100, description="the receiving process")
    ] = None,
    route: Annotated[str | None, Query(max_length=100, description="a route id")] = None,
    priority: Priority | None = None,
    milestone: ClockName | None = None,
) -> ReportFilter:
    return ReportFilter(
        process=process,
        from_process=supplier,
        to_process=customer,
        route_id=route,
        priority=priority.value if priority is not None else None,
        milestone=milestone,
    )


FiltersDep = Annotated[ReportFilter, Depends(_filters)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="groups (or rows) per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "")


def _csv_response(rows: Iterable[list[str]], filename: str) -> Response:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/reports/late",
    response_model=LateList,
    responses=_json_or_csv(examples.LATE, examples.LATE_CSV),
)
async def late_handoffs(
    request: Request,
    queries: QueriesDep,
    clock: ClockDep,
    window: WindowArgs,
    filters: FiltersDep,
    caller: Reader,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """The breaches of a window, latest deadline first, each linked to its status on sla."""
    span = window_of(window, clock)
    late = await run_in_threadpool(queries.late, span, filters, limit=limit, offset=offset)
    if _wants_csv(request):
        return _csv_response(late_csv(late), f"late-{span.label}.csv".replace(" ", "-"))
    return JSONResponse(late.model_dump(mode="json", by_alias=True))


@router.get(
    "/reports/review",
    response_class=HTMLResponse,
    responses={
        **_streamed("text/html", examples.REVIEW_HTML, "a printable HTML page"),
        404: {"description": "No such process in the map or the history, or not shard 0"},
    },
)
async def management_review(
    queries: QueriesDep,
    clock: ClockDep,
    window: WindowArgs,
    caller: Reader,
    process: Annotated[
        str,
        Query(min_length=1, max_length=100, description="the process", examples=["it-l2-network"]),
    ],
) -> HTMLResponse:
    """The management review of one process over one period (ISO 9001 9.1.2 and 9.1.3, ITIL
    service reviews): on-time trend against the objective, who waits for whom, rework,
    satisfaction, the internal customers and suppliers, the standards in force and their
    owners. Printable; its charts are inline SVG."""
    span = window_of(window, clock)
    data = await run_in_threadpool(queries.review, process, span)
    if data is None:
        raise NotFound(f"no process {process!r} in the map in force or in the history")
    return HTMLResponse(await run_in_threadpool(review_html, data))


@router.get(
    "/reports/{grouping}",
    response_model=Report,
    responses=_json_or_csv(examples.REPORT, examples.REPORT_CSV),
)
async def report(
    request: Request,
    grouping: Annotated[Grouping, Path(examples=["pairs"])],
    queries: QueriesDep,
    clock: ClockDep,
    window: WindowArgs,
    filters: FiltersDep,
    caller: Reader,
    limit: Limit = 50,
    offset: Offset = 0,
    late: Annotated[int, Query(ge=0, le=100, description="latest breaches per group")] = 5,
    comments: Annotated[int, Query(ge=0, le=100, description="latest comments per group")] = 5,
) -> Response:
    """Figures per supplier->customer pair (`pairs`), per process as supplier (`suppliers`) or
    as internal customer (`customers`), or per route and standard version (`routes`), over a
    window: count, share on time against the objective, p50/p90/p95 business and wall
    durations, breaches and retractions, rework and its reasons, satisfaction with its
    comments, the latest late handoffs. JSON, or CSV with `Accept: text/csv`."""
    span = window_of(window, clock)
    found = await run_in_threadpool(
        queries.report,
        grouping,
        span,
        filters,
        limit=limit,
        offset=offset,
        late_per_group=late,
        comments_per_group=comments,
    )
    if _wants_csv(request):
        name = f"{grouping.value}-{span.label}.csv".replace(" ", "-")
        return _csv_response(report_csv(found), name)
    return JSONResponse(found.model_dump(mode="json", by_alias=True))


# --------------------------------------------------------------------------- exports


def _export(
    queries: QueriesDep,
    clock: ClockDep,
    window: WindowArgs,
    process: Annotated[str | None, Query(max_length=100, description="either end")] = None,
    case: Annotated[str | None, Query(max_length=200, description="one case")] = None,
) -> tuple[QueriesDep, Window, str | None, str | None]:
    return queries, window_of(window, clock, everything_by_default=True), process, case


ExportDep = Annotated[tuple[Any, Window, str | None, str | None], Depends(_export)]


def _stream(chunks: Iterator[str], media: str, filename: str) -> StreamingResponse:
    # A sync iterator: Starlette pulls each chunk on a worker thread, so the store's cursor
    # and the serialisation never block the event loop, and nothing is buffered whole.
    return StreamingResponse(
        (chunk.encode() for chunk in chunks),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/exports/events.csv",
    tags=["exports"],
    response_class=StreamingResponse,
    responses=_streamed(CSV, examples.EVENTS_CSV, "the event log as CSV"),
)
async def export_csv(export: ExportDep, caller: Reader) -> StreamingResponse:
    """The handoff event log as CSV (one row per lifecycle event, by case and time), streamed;
    filtered by window (default: all history), process or case."""
    queries, span, process, case = export
    events = queries.event_log(span, process=process, case_id=case)
    return _stream(csv_chunks(events), f"{CSV}; charset=utf-8", "baton-events.csv")


@router.get(
    "/exports/events.xes",
    tags=["exports"],
    response_class=StreamingResponse,
    responses=_streamed("application/xml", examples.EVENTS_XES, "XES (IEEE 1849)"),
)
async def export_xes(export: ExportDep, caller: Reader) -> StreamingResponse:
    """The handoff event log as XES (IEEE 1849-2016): a trace per case, streamed."""
    queries, span, process, case = export
    events = queries.event_log(span, process=process, case_id=case)
    return _stream(xes_chunks(events), "application/xml", "baton-events.xes")


@router.get(
    "/exports/events.ocel.json",
    tags=["exports"],
    response_class=StreamingResponse,
    responses=_streamed("application/json", examples.EVENTS_OCEL, "OCEL 2.0 JSON"),
)
async def export_ocel(export: ExportDep, caller: Reader) -> StreamingResponse:
    """The handoff event log as OCEL 2.0 JSON (objects: cases, handoffs, teams), streamed."""
    queries, span, process, case = export
    objects = queries.event_log_objects(span, process=process, case_id=case)
    events = queries.event_log(span, process=process, case_id=case)
    return _stream(ocel_chunks(objects, events), "application/json", "baton-events.ocel.json")
