"""intake's HTTP API: submit a handoff, post a lifecycle event, post a batch of events; the
rejections (events accepted here and refused downstream) and their replay.

Bodies are read and parsed here, not by FastAPI: a body over the size limit is refused before
it is parsed, `NaN` and `Infinity` (which Python's json module lets through) are refused as
not JSON, and each event is validated once, against the contract of its type.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError

from intake.adapters.telemetry import IntakeMetrics
from intake.api import examples
from intake.api.schemas import Accepted, RejectionDetail, RejectionList, RejectionOut, Replayed
from intake.domain import cloudevents
from intake.domain.events import EventTooLarge, InvalidEvents, MissingIdempotency, OutOfScope
from intake.domain.idempotency import KeyInFlight, KeyReused, Reply
from intake.domain.posted import BATCH, HANDOFF, ONE_EVENT, BatchIn
from intake.domain.rejections import Rejection
from intake.handlers import Intake, MapNotLoaded
from shared.auth import SECURITY, Reader, Scope, Writer, caller_of
from shared.contracts import Identifier
from shared.events import LifecycleName
from shared.http import (
    PROBLEM_RESPONSES,
    FieldError,
    NotFound,
    ProblemError,
    Unavailable,
    problem_response,
)
from shared.kafka import KafkaUnavailable

router = APIRouter(prefix="/v1", tags=["intake"])

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "makes a retried request safe: a retry gets the first reply; required "
    "when an event carries no event_id (its id is then derived from the key)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


RejectionIdPath = Annotated[
    str,
    Path(
        description="<dead-letter topic>:<partition>:<offset>",
        examples=["handoff.routed.v1.dlq:3:118"],
    ),
]
_REJECTION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such rejection (kept: the newest within retention)"},
    503: {"description": "intake is still reading the dead-letter topics: retry shortly"},
}


def _idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key header (422 when empty or too long)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.strip():
        raise InvalidEvents([("Idempotency-Key", "give a non-empty key of at most 200 characters")])
    return key


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload too large"


# --------------------------------------------------------------------------- bodies


def _body_spec(
    adapter: TypeAdapter[Any],
    example: dict[str, Any],
    answer: dict[str, Any],
    named: bool = False,
    more: dict[str, Any] | None = None,
    more_schemas: dict[str, Any] | None = None,
    path: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI of a posting operation whose body, key and header are read by hand (no
    FastAPI dependencies on this hot path): the body's own JSON schema with its example (or,
    `named`, a map of named examples), the Idempotency-Key header, the bearer security, and
    the example of its 202; `more`: other media types it takes, with their own schemas
    (`more_schemas`); `path`: its path parameters, when read by hand too."""
    schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    shown = {"examples" if named else "example": example}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, **shown}, **(more or {})},
        },
        "parameters": [*(path or []), _IDEMPOTENCY_KEY],
        "security": SECURITY,
        "responses": {"202": {"content": {"application/json": {"example": answer}}}},
        "x-baton-schemas": {**defs, **(more_schemas or {})},
    }


_CLOUDEVENT = "#/components/schemas/CloudEvent"


def _cloudevent_schemas() -> dict[str, Any]:
    """The JSON schemas of a CloudEvent as intake takes it, as components: `CloudEvent`, a
    union on `type` of one schema per Baton event (`CloudEventSubmitted`, ...), whose `data`
    is that event's own schema (the one its Baton JSON uses, e.g. HandoffSubmittedV1)."""
    text = {"type": "string", "minLength": 1}
    mapping: dict[str, str] = {}
    schemas: dict[str, Any] = {}
    for name in LifecycleName.__args__:  # type: ignore[attr-defined]
        kind = cloudevents.TYPE_PREFIX + name
        data = {"$ref": f"#/components/schemas/Handoff{name.capitalize()}V1"}
        title = f"CloudEvent{name.capitalize()}"
        mapping[kind] = f"#/components/schemas/{title}"
        schemas[title] = {
            "title": title,
            "type": "object",
            "required": ["specversion", "id", "source", "type"],
            "properties": {
                "specversion": {"const": "1.0"},
                "id": {**text, "description": "the event id (makes retries safe)"},
                "source": {**text, "description": "the upstream system's name for itself"},
                "type": {"const": kind},
                "subject": {**text, "description": "the handoff id (optional on openings)"},
                "time": {"type": "string", "format": "date-time", "description": "occurred_at"},
                "datacontenttype": {
                    "type": "string",
                    "pattern": "^(application|text)/(.+\\+)?json",
                },
                "caseid": {
                    "anyOf": [text, {"type": "null"}],
                    "description": "the case, on events after the opening one (null: none)",
                },
                "data": {
                    "anyOf": [data, {"type": "null"}],
                    "description": "what Baton's own JSON puts in `data` (null or absent: {})",
                },
            },
        }
    schemas["CloudEvent"] = {
        "title": "CloudEvent",
        "description": "A CloudEvent 1.0, `type` baton.handoff.<event> (see the README's "
        "mapping). Other attributes and extensions are allowed and ignored.",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    return schemas


def _cloudevents_content() -> dict[str, Any]:
    """The CloudEvents media types of POST /v1/events (binary mode, ce-* headers with the
    data as the body, is in the operation's description)."""
    return {
        cloudevents.STRUCTURED: {"schema": {"$ref": _CLOUDEVENT}, "example": examples.CLOUDEVENT},
        cloudevents.BATCH: {
            "schema": {"type": "array", "minItems": 1, "items": {"$ref": _CLOUDEVENT}},
            "example": examples.CLOUDEVENTS_BATCH,
        },
    }


_POSTING_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"description": "A request with this Idempotency-Key is still being processed: retry"},
    503: PROBLEM_RESPONSES[503],
}
"""The errors only a post gives, besides those of any operation with a key and a body."""

_SUBMIT_EXAMPLE = {
    "handoff_id": "demo-1",
    "case_id": "INC-1001",
    "kind": "incident",
    "from": "service-desk",
    "priority": "P2",
}
_BATCH_EXAMPLE = {
    "events": [
        {
            "handoff_id": "po-4711",
            "type": "submitted",
            "event_id": "po-4711-s",
            "occurred_at": "2026-11-20T14:03:00+01:00",
            "data": {"case_id": "order-4711", "kind": "pick-request", "from": "sales"},
        },
        {"handoff_id": "po-4711", "type": "accepted", "event_id": "po-4711-a"},
    ]
}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the body is {declared} bytes; at most {limit} are accepted",
            [FieldError(field="body", reason=f"at most {limit} bytes")],
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(
                f"the body is over {limit} bytes",
                [FieldError(field="body", reason=f"at most {limit} bytes")],
            )
    return bytes(body)


def _not_a_number(token: str) -> float:
    raise ValueError(token)


def _parse(raw: bytes) -> Any:
    """The JSON document of a body; 400 naming the problem (NaN/Infinity are not JSON)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            json.loads(raw, parse_constant=_not_a_number)
        except ValueError as constant:
            if str(constant) in ("NaN", "Infinity", "-Infinity"):
                raise ProblemError(
                    f"{constant} is not a JSON number: send a finite number or null",
                    [FieldError(field="body", reason=f"{constant} is not valid JSON")],
                ) from None
        raise ProblemError(
            f"the body is not valid JSON: {exc}",
            [FieldError(field="body", reason=str(exc))],
        ) from None


_TAGS = frozenset(LifecycleName.__args__)  # type: ignore[attr-defined]


def _field(loc: Sequence[int | str], error_type: str) -> str:
    """A validation error's location as a field path, without the union's tag step."""
    parts: list[int | str] = []
    for index, part in enumerate(loc):
        previous = loc[index - 1] if index else None
        if isinstance(part, str) and part in _TAGS and (index == 0 or isinstance(previous, int)):
            continue  # ("events", 0, "submitted", "data") -> events[0].data
        parts.append(part)
    if error_type in ("union_tag_invalid", "union_tag_not_found"):
        parts.append("type")
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _invalid(exc: ValidationError, flat: bool = False) -> InvalidEvents:
    errors = []
    for err in exc.errors():
        loc = list(err["loc"])
        if flat and loc[:1] == ["data"]:
            loc = loc[1:]
        reason = str(err["msg"]).removeprefix("Value error, ")
        errors.append((_field(loc, err["type"]), reason))
    return InvalidEvents(errors)


def _fingerprint(request: Request, raw: bytes) -> str:
    head = f"{request.method} {request.url.path} {request.headers.get('content-type', '')}"
    return hashlib.sha256(head.encode() + b"\n" + raw).hexdigest()


def _reply(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type="application/json")


def _service(request: Request) -> Intake:
    service: Intake = request.app.state.intake
    return service


# --------------------------------------------------------------------------- posting


@router.post(
    "/handoffs",
    status_code=202,
    response_model=Accepted,
    responses=_POSTING_ERRORS,
    openapi_extra=_body_spec(HANDOFF, _SUBMIT_EXAMPLE, examples.SUBMITTED),
)
async def submit_handoff(request: Request) -> Response:
    """Submit one handoff (or, with `"type": "expected"`, announce one the supplier owes):
    its clocks start when it reaches the receiving process. The receiver is routing's choice
    unless `to` is given."""
    caller = caller_of(request, Scope.WRITE)
    idempotency_key = _idempotency_key(request)
    raw = await _read_body(request, request.app.state.settings.max_body_bytes)
    try:
        handoff = HANDOFF.validate_python(_parse(raw))
    except ValidationError as exc:
        raise _invalid(exc) from None
    fingerprint = _fingerprint(request, raw) if idempotency_key else ""
    reply = await _service(request).post(
        caller, [handoff.as_posted()], [""], idempotency_key, fingerprint, flat=True
    )
    return _reply(reply)


_HANDOFF_ID = TypeAdapter(Identifier)
_HANDOFF_ID_PATH = {
    "name": "handoff_id",
    "in": "path",
    "required": True,
    "schema": _HANDOFF_ID.json_schema(),
    "examples": {"po-4711": {"value": "po-4711"}},
}


def _handoff_id(request: Request) -> str:
    """The handoff id of the path, checked as FastAPI would (read by hand: this hot path skips
    FastAPI's parameter machinery, a tenth of its cost)."""
    handoff_id: str = request.path_params["handoff_id"]
    try:
        return _HANDOFF_ID.validate_python(handoff_id)
    except ValidationError as exc:
        raise InvalidEvents([("handoff_id", str(err["msg"])) for err in exc.errors()]) from None


@router.post(
    "/handoffs/{handoff_id:path}/events",
    status_code=202,
    response_model=Accepted,
    responses=_POSTING_ERRORS,
    openapi_extra=_body_spec(
        ONE_EVENT, examples.ONE_EVENT, examples.PAUSED, named=True, path=[_HANDOFF_ID_PATH]
    ),
)
async def post_event(request: Request) -> Response:
    """Post one lifecycle event (accepted, completed, paused, ...) on the handoff in the path
    (ids with '/' or '#' are sent URL-encoded: `ERP%2FPO%234711`)."""
    handoff_id = _handoff_id(request)
    caller = caller_of(request, Scope.WRITE)
    idempotency_key = _idempotency_key(request)
    raw = await _read_body(request, request.app.state.settings.max_body_bytes)
    document = _parse(raw)
    if isinstance(document, dict):
        given = document.setdefault("handoff_id", handoff_id)
        if given != handoff_id:
            raise InvalidEvents(
                [("handoff_id", f"{given!r} differs from the path's {handoff_id!r}")]
            )
    try:
        event = ONE_EVENT.validate_python(document)
    except ValidationError as exc:
        raise _invalid(exc) from None
    fingerprint = _fingerprint(request, raw) if idempotency_key else ""
    return _reply(await _service(request).post(caller, [event], [""], idempotency_key, fingerprint))


@router.post(
    "/events",
    status_code=202,
    response_model=Accepted,
    responses=_POSTING_ERRORS,
    openapi_extra=_body_spec(
        BATCH,
        _BATCH_EXAMPLE,
        examples.BATCH,
        more=_cloudevents_content(),
        more_schemas=_cloudevent_schemas(),
    ),
)
async def post_events(request: Request) -> Response:
    """Post a batch of lifecycle events of any type, for any handoffs: all are written, or
    none (at most `INTAKE_MAX_BATCH` per request). Also takes CloudEvents 1.0: one event in
    structured mode (`application/cloudevents+json`), a batch (`application/cloudevents-batch
    +json`) or binary mode (`ce-*` headers, the event's data as the body); see the README."""
    caller = caller_of(request, Scope.WRITE)
    idempotency_key = _idempotency_key(request)
    settings = request.app.state.settings
    raw = await _read_body(request, settings.max_body_bytes)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == cloudevents.BATCH:
        document = _parse(raw)
        if isinstance(document, list) and len(document) > settings.max_batch:
            raise _too_many(len(document), settings.max_batch, "body")
        items = cloudevents.batch(document)
        paths = [f"[{i}]" for i in range(len(items))]
    elif media == cloudevents.STRUCTURED:
        items, paths = [cloudevents.structured(_parse(raw))], [""]
    elif cloudevents.is_binary(request.headers):
        _parse(raw or b"null")  # NaN, Infinity or broken JSON are refused here too
        items, paths = [cloudevents.binary(request.headers, raw)], [""]
    else:
        document = _parse(raw)
        events = document.get("events") if isinstance(document, dict) else None
        if isinstance(events, list) and len(events) > settings.max_batch:
            raise _too_many(len(events), settings.max_batch, "events")
        try:
            batch: BatchIn = BATCH.validate_python(document)
        except ValidationError as exc:
            raise _invalid(exc) from None
        items = list(batch.events)
        paths = [f"events[{i}]" for i in range(len(items))]
    fingerprint = _fingerprint(request, raw) if idempotency_key else ""
    return _reply(await _service(request).post(caller, items, paths, idempotency_key, fingerprint))


def _too_many(count: int, limit: int, field: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{count} events in one request; at most {limit}",
        [FieldError(field=field, reason=f"at most {limit} events")],
    )


# --------------------------------------------------------------------------- rejections


def _rejections_ready(request: Request) -> None:
    if not request.app.state.dead_letters.ready:
        raise Unavailable(
            "intake is still reading the dead-letter topics; retry shortly",
            headers={"Retry-After": "2"},
        )


@router.get(
    "/rejections",
    response_model=RejectionList,
    tags=["rejections"],
    responses={503: _REJECTION_ERRORS[503]},
)
async def list_rejections(
    request: Request,
    caller: Reader,
    handoff_id: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[str | None, Query(max_length=200, description="upstream system")] = None,
    reason: Annotated[str | None, Query(max_length=100, description="reason code")] = None,
    service: Annotated[str | None, Query(max_length=100)] = None,
    case_id: Annotated[str | None, Query(max_length=200)] = None,
    replayed: bool | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RejectionList:
    """Events accepted at the door and refused downstream, newest first, by handoff, upstream
    system, reason code, service or case."""
    _rejections_ready(request)
    found = list(
        _service(request).rejections.find(
            handoff_id=handoff_id,
            source=source,
            code=reason,
            service=service,
            case_id=case_id,
            replayed=replayed,
        )
    )
    page = found[offset : offset + limit]
    return RejectionList(count=len(found), offset=offset, items=[RejectionOut.of(r) for r in page])


def _rejection(request: Request, rejection_id: str) -> Rejection:
    _rejections_ready(request)
    found = _service(request).rejections.get(rejection_id)
    if found is None:
        raise NotFound(f"no rejection {rejection_id!r} (kept: the newest within retention)")
    return found


@router.get(
    "/rejections/{rejection_id:path}",
    response_model=RejectionDetail,
    tags=["rejections"],
    responses=_REJECTION_ERRORS,
)
async def get_rejection(
    rejection_id: RejectionIdPath, request: Request, caller: Reader
) -> RejectionDetail:
    """One rejection with the event as it was refused."""
    return RejectionDetail.detail(_rejection(request, rejection_id))


@router.post(
    "/rejections/{rejection_id:path}/replay",
    status_code=202,
    response_model=Replayed,
    tags=["rejections"],
    responses={
        **_REJECTION_ERRORS,
        409: {"description": "Already replayed (add force=true), or not a lifecycle event"},
    },
)
async def replay_rejection(
    rejection_id: RejectionIdPath, request: Request, caller: Writer, force: bool = False
) -> Replayed:
    """Post a refused lifecycle event again, with its original id, once its cause is fixed
    (a route added, its handoff opened). Admin keys replay anything; other keys what they
    posted. A replay that fails again shows up as a new rejection."""
    rejection = _rejection(request, rejection_id)
    done = await _service(request).replay(caller, rejection, force)
    return Replayed(rejection=RejectionOut.of(done))


# --------------------------------------------------------------------------- errors


def install_error_mapping(app: FastAPI, retry_after_s: int, metrics: IntakeMetrics) -> None:
    """Map intake's typed errors to status codes, counting each refusal by reason."""

    def refused(
        reason: str,
        status: int,
        title: str,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        metrics.refuse(reason)
        return problem_response(status, title, detail, errors or [], headers)

    @app.exception_handler(InvalidEvents)
    async def _invalid_events(request: Request, exc: InvalidEvents) -> JSONResponse:
        errors = [FieldError(field=f, reason=r) for f, r in exc.errors]
        return refused("invalid", 422, "Invalid events", "nothing was accepted", errors)

    @app.exception_handler(MissingIdempotency)
    async def _no_id(request: Request, exc: MissingIdempotency) -> JSONResponse:
        reason = "give each event an event_id, or the request an Idempotency-Key header"
        return refused(
            "not-idempotent",
            400,
            "Not idempotent",
            "a retry of this request could duplicate events",
            [FieldError(field=exc.field, reason=reason)],
        )

    @app.exception_handler(OutOfScope)
    async def _scope(request: Request, exc: OutOfScope) -> JSONResponse:
        errors = [FieldError(field=f, reason=r) for f, r in exc.errors]
        return refused("forbidden", 403, "Forbidden", "nothing was accepted", errors)

    @app.exception_handler(EventTooLarge)
    async def _too_large(request: Request, exc: EventTooLarge) -> JSONResponse:
        errors = [FieldError(field=f, reason=r) for f, r in exc.errors]
        detail = "nothing was accepted; an event this large can never be written, do not retry"
        return refused("event-too-large", 413, "Event too large", detail, errors)

    @app.exception_handler(PayloadTooLarge)
    async def _body_too_large(request: Request, exc: PayloadTooLarge) -> JSONResponse:
        return refused("body-too-large", 413, exc.title, exc.detail, exc.errors)

    @app.exception_handler(KeyReused)
    async def _reused(request: Request, exc: KeyReused) -> JSONResponse:
        detail = "this Idempotency-Key was already used with a different request"
        errors = [FieldError(field="Idempotency-Key", reason=detail)]
        return refused("key-reused", 422, "Idempotency-Key reused", detail, errors)

    @app.exception_handler(KeyInFlight)
    async def _in_flight(request: Request, exc: KeyInFlight) -> JSONResponse:
        detail = "a request with this Idempotency-Key is still being processed; retry shortly"
        return refused(
            "key-in-flight", 409, "Request in progress", detail, headers={"Retry-After": "1"}
        )

    @app.exception_handler(MapNotLoaded)
    async def _no_map(request: Request, exc: MapNotLoaded) -> JSONResponse:
        return refused("map-not-loaded", 503, exc.title, exc.detail, headers=exc.headers)

    @app.exception_handler(KafkaUnavailable)
    async def _kafka(request: Request, exc: KafkaUnavailable) -> JSONResponse:
        return refused(
            "kafka-unavailable",
            503,
            "Kafka unavailable",
            f"nothing was accepted ({exc}); retry the same request (same ids or "
            "Idempotency-Key) after Retry-After",
            headers={"Retry-After": str(retry_after_s)},
        )
