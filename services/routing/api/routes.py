"""routing's HTTP API: the process map in force, the internal-customer register, map validation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from routing.api import examples
from routing.api.deps import CatalogDep, ClockDep, MapNotInForce, OutboxDep, QueriesDep
from routing.api.schemas import (
    MapSummary,
    MapVersions,
    ProcessDetail,
    RelationOut,
    Reloaded,
    RouteVersion,
    RouteVersions,
    StandardPreview,
)
from routing.domain.catalog import Relation
from routing.domain.outbox import Pending
from routing.domain.processmap import InvalidProcessMap
from routing.domain.versioning import Change, Versioned
from routing.handlers import MapKeeper
from routing.queries import OutboxQueries
from shared.auth import Admin, Caller, Reader
from shared.contracts import (
    ContactV1,
    ProcessMapV1,
    ProcessV1,
    RouteSpecV1,
)
from shared.events import NotificationReason
from shared.http import PROBLEM_RESPONSES, FieldError, NotFound, ProblemError, Unavailable
from shared.kafka import KafkaUnavailable
from shared.openapi import example

router = APIRouter(prefix="/v1", tags=["process map"])

YAML_MEDIA_TYPES = (
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "text/plain",
)
_EXAMPLE_MAP = """\
calendars:
  be-office:
    timezone: Europe/Brussels
    hours: {mon-fri: "08:30-12:00, 13:00-17:30"}
    holidays: {country: BE}
processes:
  sales: {name: Sales, calendar: be-office}
  warehouse: {name: Warehouse, calendar: be-office}
routes:
  - id: pick-request
    from: sales
    kind: pick-request
    to: warehouse
    standard:
      targets:
        P1: {response: 15m, resolution: 2h}
        P3: {response: 2h, resolution: 8h}
"""


class InvalidMap(ProblemError):
    """422: a posted map has errors; `errors` lists each path and reason."""

    status = 422
    title = "Invalid process map"


class UnsupportedMediaType(ProblemError):
    """415: the body is not declared as YAML or plain text."""

    status = 415
    title = "Unsupported media type"


class PayloadTooLarge(ProblemError):
    """413: the posted map is larger than `max_map_bytes`."""

    status = 413
    title = "Payload too large"


class HistoryUnavailable(Unavailable):
    """503: the map topic could not be read."""

    title = "History unavailable"


def _relations(relations: list[Relation]) -> list[RelationOut]:
    return [RelationOut(process=r.process, routes=list(r.routes)) for r in relations]


def _contact(contact: ContactV1) -> ContactV1:
    return contact.model_copy(update={"email": None, "chat": None, "webhook": None})


def _visible(process: ProcessV1, caller: Caller) -> ProcessV1:
    """A process as this caller may see it: contact details (e-mail, chat, webhooks: a webhook
    URL often carries its own token) for admin keys only."""
    if caller.admin:
        return process
    notify = process.notify.model_copy(update={"webhook": None}) if process.notify else None
    return process.model_copy(
        update={
            "owner": _contact(process.owner) if process.owner else None,
            "escalation": tuple(_contact(c) for c in process.escalation),
            "notify": notify,
        }
    )


def _answer(value: Any, *errors: int) -> dict[int | str, dict[str, Any]]:
    """An answer's example (for the shared contracts, which carry none) and the errors it
    may give besides the 503 of a map not yet in force."""
    documented: dict[int | str, dict[str, Any]] = {
        200: {"content": {"application/json": example(value)}},
        503: {"description": "The process map is not in force yet (Kafka not reached)"},
    }
    for code in errors:
        documented[code] = {"description": PROBLEM_RESPONSES[code]["description"]}
    return documented


ProcessIdPath = Annotated[str, Path(examples=["warehouse"])]
RouteIdPath = Annotated[str, Path(examples=["pick-request"])]
_HISTORY_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"description": "The map topic could not be read: retry after Retry-After"}
}


@router.get(
    "/map",
    response_model=ProcessMapV1,
    response_model_exclude_none=True,
    responses=_answer(examples.PROCESS_MAP),
)
async def get_map(catalog: CatalogDep, caller: Reader) -> ProcessMapV1:
    """The process map in force: calendars, processes, routes with versioned standards, and
    the python-holidays data version the public holidays come from. Contact e-mails, chat
    channels and webhooks are shown to admin keys only."""
    if caller.admin:
        return catalog.map
    return catalog.map.model_copy(
        update={"processes": tuple(_visible(p, caller) for p in catalog.map.processes)}
    )


@router.get(
    "/processes",
    response_model=list[ProcessV1],
    response_model_exclude_none=True,
    responses=_answer([examples.SALES, examples.WAREHOUSE]),
)
async def list_processes(catalog: CatalogDep, caller: Reader) -> list[ProcessV1]:
    """Every process (team, department, process step) in map order."""
    return [_visible(p, caller) for p in catalog.map.processes]


@router.get(
    "/processes/{process_id}",
    response_model=ProcessDetail,
    response_model_exclude_none=True,
    responses={
        404: {"description": "No such process in the map in force"},
        503: {"description": "The process map is not in force yet (Kafka not reached)"},
    },
)
async def get_process(
    process_id: ProcessIdPath, catalog: CatalogDep, caller: Reader
) -> ProcessDetail:
    """A process and its internal-customer register: suppliers and customers, direct and not."""
    process = catalog.processes.get(process_id)
    if process is None:
        raise NotFound(f"no process {process_id!r} in the map in force")
    return ProcessDetail(
        process=_visible(process, caller),
        calendar=catalog.calendars[process.calendar],
        suppliers=_relations(catalog.suppliers(process_id)),
        customers=_relations(catalog.customers(process_id)),
        upstream=catalog.upstream(process_id),
        downstream=catalog.downstream(process_id),
    )


@router.get("/routes", response_model=list[RouteSpecV1], responses=_answer([examples.ROUTE]))
async def list_routes(
    catalog: CatalogDep,
    caller: Reader,
    from_process: Annotated[str | None, Query(alias="from", max_length=100)] = None,
    to_process: Annotated[str | None, Query(alias="to", max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
) -> list[RouteSpecV1]:
    """Routes, optionally filtered by supplying process, receiving process and kind."""
    return catalog.find_routes(from_process, to_process, kind)


@router.get(
    "/routes/{route_id}", response_model=RouteSpecV1, responses=_answer(examples.ROUTE, 404)
)
async def get_route(route_id: RouteIdPath, catalog: CatalogDep, caller: Reader) -> RouteSpecV1:
    """One route with its service standard (the version in force)."""
    route = catalog.routes.get(route_id)
    if route is None:
        raise NotFound(f"no route {route_id!r} in the map in force")
    return route


_YAML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the process map as YAML text (the format of deploy/process-map.yaml)",
        "content": {
            media: {"schema": {"type": "string"}, "example": _EXAMPLE_MAP}
            for media in ("application/yaml", "text/plain")
        },
    }
}


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"a process map may be at most {limit} bytes")
    return bytes(body)


@router.post(
    "/map/validate",
    response_model=MapSummary,
    openapi_extra=_YAML_BODY,
    responses={413: {"description": "Body too large"}, 415: {"description": "Not YAML"}},
)
async def validate_map(
    request: Request, queries: QueriesDep, clock: ClockDep, caller: Admin
) -> MapSummary:
    """Check a process map (YAML) without applying it: every error with its path, or a summary
    with the standard versions it would get against the map in force. The check runs on a
    worker thread, one at a time, so a large map never stalls the service's event loop."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in YAML_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"send the map as YAML text with Content-Type {' or '.join(YAML_MEDIA_TYPES[:1])} "
            f"(or {', '.join(YAML_MEDIA_TYPES[1:])}); got {media or 'none'!r}"
        )
    raw = await _read_body(request, request.app.state.settings.max_map_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(
            "the body is not UTF-8 text",
            [FieldError(field="body", reason=f"not UTF-8 at byte {exc.start}")],
        ) from None
    try:
        # One check at a time, on a worker thread: a large map holds much CPU for seconds.
        async with request.app.state.validating:
            preview = await run_in_threadpool(queries.preview, text, clock.now())
    except InvalidProcessMap as exc:
        raise InvalidMap(
            f"{len(exc.errors)} error(s); nothing was applied",
            [FieldError(field=e.path, reason=e.reason) for e in exc.errors],
        ) from None
    draft, versioned = preview.draft, preview.versioned
    return MapSummary(
        calendars=len(draft.calendars),
        processes=len(draft.processes),
        routes=len(draft.routes),
        kinds=sorted({r.kind for r in draft.routes}),
        compared_with_version=preview.compared_with.version if preview.compared_with else None,
        standards=[
            StandardPreview(
                route_id=s.route_id,
                change=s.change,
                version=s.version,
                previous_version=s.previous_version,
            )
            for s in versioned.standards
        ],
        removed_routes=list(versioned.removed_routes),
    )


def _standards(versioned: Versioned) -> list[StandardPreview]:
    return [
        StandardPreview(
            route_id=s.route_id,
            change=s.change,
            version=s.version,
            previous_version=s.previous_version,
        )
        for s in versioned.standards
        if s.change is not Change.UNCHANGED
    ]


@router.post(
    "/map/reload",
    response_model=Reloaded,
    responses={
        422: {"description": "The file has errors; the map in force stays"},
        503: {"description": "The map is not in force yet, or Kafka unreachable: retry later"},
    },
)
async def reload_map(
    request: Request,
    caller: Admin,
    revision: Annotated[
        str | None,
        Query(
            max_length=200,
            description="recorded with the version (e.g. the git commit); "
            "default ROUTING_MAP_REVISION",
        ),
    ] = None,
    author: Annotated[
        str | None,
        Query(max_length=200, description="who publishes it; default ROUTING_MAP_AUTHOR"),
    ] = None,
) -> Reloaded:
    """Read the process map file (ROUTING_PROCESS_MAP) again, check it and put it in force:
    edited standards get their next version, running handoffs keep theirs. A file with
    errors is refused with every error and changes nothing. SIGHUP does the same."""
    keeper: MapKeeper = request.app.state.keeper
    if not request.app.state.maps.loaded:
        raise MapNotInForce(
            "the first map is not in force yet (waiting for Kafka); retry shortly",
            headers={"Retry-After": "2"},
        )
    try:
        versioned = await keeper.reload(revision, author)
    except InvalidProcessMap as exc:
        raise InvalidMap(
            f"{len(exc.errors)} error(s) in {exc.source or 'the map file'}; the map in force stays",
            [FieldError(field=e.path, reason=e.reason) for e in exc.errors],
        ) from None
    except KafkaUnavailable as exc:
        raise Unavailable(
            f"Kafka unreachable, the map in force stays: {str(exc)[:300]}",
            headers={"Retry-After": "5"},
        ) from None
    pmap = versioned.map
    return Reloaded(
        version=pmap.version,
        published=versioned.publish,
        source=pmap.source,
        revision=pmap.revision,
        author=pmap.author,
        changes=versioned.changes(),
        standards=_standards(versioned),
        removed_routes=list(versioned.removed_routes),
    )


@router.get("/map/versions", response_model=MapVersions, responses=_HISTORY_ERRORS)
async def map_versions(queries: QueriesDep, caller: Reader) -> MapVersions:
    """Every published version of the map, newest first: when, by whom (ROUTING_MAP_AUTHOR),
    from which file and revision (ROUTING_MAP_REVISION), how many routes were new, changed,
    unchanged or removed."""
    try:
        history = await queries.history()
    except KafkaUnavailable as exc:
        raise HistoryUnavailable(str(exc)[:300], headers={"Retry-After": "5"}) from None
    current = queries.current
    return MapVersions(
        in_force=current.version if current is not None else None,
        versions=list(reversed(history.manifests)),
    )


@router.get(
    "/routes/{route_id}/versions",
    response_model=RouteVersions,
    responses={**_HISTORY_ERRORS, 404: {"description": "No published version has this route"}},
)
async def route_versions(
    route_id: RouteIdPath, queries: QueriesDep, caller: Reader
) -> RouteVersions:
    """Every version a route had, oldest first: its standard and targets, where it went, which
    map version put it in force (when, by whom, from which revision) and which one replaced or
    removed it."""
    try:
        history = await queries.history()
    except KafkaUnavailable as exc:
        raise HistoryUnavailable(str(exc)[:300], headers={"Retry-After": "5"}) from None
    eras = history.routes.of(route_id)
    if not eras:
        raise NotFound(f"no published map version has a route {route_id!r}")
    return RouteVersions(
        route_id=route_id,
        in_force=eras[-1].until is None,
        versions=[
            RouteVersion(
                version=era.standard_version,
                route=dict(era.route),
                map_version=era.since.version,
                published_at=era.since.published_at.isoformat(),
                source=era.since.source,
                revision=era.since.revision,
                author=era.since.author,
                until_map_version=era.until,
                ended=era.ended,
            )
            for era in eras
        ],
    )


class PendingNotification(BaseModel):
    """A notification waiting in the outbox: for the team's service hours, a retry, its turn."""

    notification_id: str
    handoff_id: str
    reason: NotificationReason
    team: str
    level: int = Field(description="0 the owner, N the N-th escalation contact")
    recipient: str
    webhook: str | None = Field(description="where it is posted (admin keys only, else null)")
    urgent: bool
    state: Literal["scheduled", "retrying", "in-flight"] = Field(
        description="scheduled: no attempt yet; retrying: an attempt failed, the next is due; "
        "in-flight: a POST is under way"
    )
    due: datetime = Field(
        description="the next attempt (not before the team's hours if not urgent)"
    )
    attempts: int = Field(description="attempts so far")
    last_error: str = Field(description="why the last attempt failed (empty before any)")
    in_flight: bool
    body: dict[str, Any] | None = Field(
        description="the JSON that is posted (admin keys only: it names contacts)"
    )


class FinishedNotification(BaseModel):
    """A notification that is over: delivered, or given up and dead-lettered."""

    notification_id: str
    handoff_id: str
    reason: NotificationReason | None
    team: str
    state: Literal["delivered", "dead-lettered"]
    attempts: int = Field(description="POSTs made (0: dead-lettered unsent, e.g. no secret)")
    at: datetime = Field(description="when it was delivered or given up")
    status: int | None = Field(description="the receiver's 2xx status when delivered")
    code: str = Field(description="dead-lettered: refused | retries-exhausted | no-secret")
    error: str = Field(description="dead-lettered: the last failure")


class OutboxView(BaseModel):
    """The outbox partitions this instance owns: what they hold pending, what just finished."""

    enabled: bool = Field(description="false: ROUTING_NOTIFICATIONS is off")
    partitions: dict[int, bool] = Field(
        description="outbox partitions owned here -> restored (another instance owns the rest)"
    )
    pending: list[PendingNotification]
    finished: list[FinishedNotification] = Field(
        description="the latest delivered or dead-lettered notifications, latest first "
        "(the last 1,000 per partition since this instance took it over)"
    )


@router.get(
    "/notifications",
    response_model=OutboxView,
    tags=["notifications"],
    responses={
        200: {"content": {"application/json": example(examples.NOTIFICATIONS)}},
        422: {"description": PROBLEM_RESPONSES[422]["description"]},
    },
)
async def notifications(
    outbox: OutboxDep,
    caller: Reader,
    handoff: Annotated[
        str | None, Query(max_length=200, description="only this handoff's notifications")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="finished notifications listed, at most")
    ] = 100,
) -> OutboxView:
    """The delivery state of notifications in this instance's outbox partitions: pending ones
    soonest first (with their attempts and last error), finished ones latest first (delivered
    with the receiver's status, or dead-lettered with the code). Webhook URLs and bodies (they
    name contacts, a URL may carry a token) are shown to admin keys only. Dead letters are on
    `routing.notifications.v1.dlq` and counted in `handoff_notifications_dead_lettered_total`."""
    return OutboxView(
        enabled=outbox.enabled,
        partitions=outbox.partitions(),
        pending=[_pending(item, outbox, caller) for item in outbox.pending(handoff)],
        finished=[
            FinishedNotification(
                notification_id=done.notification_id,
                handoff_id=done.handoff_id,
                reason=done.reason,
                team=done.team,
                state="delivered" if done.delivered else "dead-lettered",
                attempts=done.attempts,
                at=done.at,
                status=done.status,
                code=done.code,
                error=done.error,
            )
            for done in outbox.finished(handoff, limit)
        ],
    )


def _pending(item: Pending, outbox: OutboxQueries, caller: Caller) -> PendingNotification:
    request = item.request
    flying = outbox.in_flight(request.notification_id)
    state: Literal["scheduled", "retrying", "in-flight"] = (
        "in-flight" if flying else "retrying" if item.attempts else "scheduled"
    )
    return PendingNotification(
        notification_id=request.notification_id,
        handoff_id=request.handoff_id,
        reason=request.reason,
        team=request.team,
        level=request.level,
        recipient=request.recipient,
        webhook=request.webhook if caller.admin else None,
        urgent=request.urgent,
        state=state,
        due=item.due,
        attempts=item.attempts,
        last_error=item.last_error,
        in_flight=flying,
        body=request.body if caller.admin else None,
    )
