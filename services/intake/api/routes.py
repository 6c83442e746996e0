"""intake's HTTP API: submit a handoff, post a lifecycle event, post a batch of events."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from intake.api.deps import CallerDep, IdempotencyKey, IntakeDep
from intake.domain.events import EventIn, InvalidEvents, MissingIdempotency, OutOfScope
from intake.domain.idempotency import KeyInFlight, KeyReused, Reply
from shared.contracts import Identifier, UtcDatetime
from shared.events import HandoffOpeningV1, LifecycleName
from shared.http import FieldError, problem_response
from shared.kafka import KafkaUnavailable

router = APIRouter(prefix="/v1", tags=["intake"])


class HandoffIn(HandoffOpeningV1):
    """A handoff delivered to (or, with type=expected, owed to) the receiving process."""

    handoff_id: Identifier | None = Field(None, description="default: derived from event_id")
    event_id: Identifier | None = None
    occurred_at: UtcDatetime | None = None
    type: Literal["submitted", "expected"] = "submitted"


class LifecycleIn(BaseModel):
    """A lifecycle event on one handoff; `data` is the payload of `type`."""

    model_config = {"extra": "forbid"}

    type: LifecycleName
    event_id: Identifier | None = None
    occurred_at: UtcDatetime | None = None
    case_id: Identifier | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class BatchIn(BaseModel):
    """Events of any type, for any handoffs; all are accepted or none."""

    model_config = {"extra": "forbid"}

    events: list[EventIn] = Field(min_length=1)


class EventAccepted(BaseModel):
    event_id: str
    handoff_id: str
    type: str


class Accepted(BaseModel):
    accepted: int
    events: list[EventAccepted]


def _reply(reply: Reply) -> JSONResponse:
    return JSONResponse(reply.body, status_code=reply.status)


@router.post("/handoffs", status_code=202, response_model=Accepted)
async def submit_handoff(
    body: HandoffIn, caller: CallerDep, service: IntakeDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Submit one handoff: its clocks start when it reaches the receiving process."""
    data = body.model_dump(
        mode="json", by_alias=True, exclude={"handoff_id", "event_id", "occurred_at", "type"}
    )
    item = EventIn(
        handoff_id=body.handoff_id,
        type=body.type,
        event_id=body.event_id,
        occurred_at=body.occurred_at,
        data=data,
    )
    return _reply(await service.post(caller, [item], [""], idempotency_key, flat=True))


@router.post("/handoffs/{handoff_id}/events", status_code=202, response_model=Accepted)
async def post_event(
    handoff_id: Identifier,
    body: LifecycleIn,
    caller: CallerDep,
    service: IntakeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Post one lifecycle event (accepted, completed, paused, ...) on a handoff."""
    item = EventIn(handoff_id=handoff_id, **body.model_dump())
    return _reply(await service.post(caller, [item], [""], idempotency_key))


@router.post("/events", status_code=202, response_model=Accepted)
async def post_events(
    body: BatchIn,
    request: Request,
    caller: CallerDep,
    service: IntakeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Post a batch of lifecycle events of any type: all are written, or none."""
    limit: int = request.app.state.settings.max_batch
    if len(body.events) > limit:
        return problem_response(
            413,
            "Batch too large",
            errors=[FieldError(field="events", reason=f"at most {limit} events per request")],
        )
    paths = [f"events[{i}]" for i in range(len(body.events))]
    return _reply(await service.post(caller, body.events, paths, idempotency_key))


def install_error_mapping(app: FastAPI, retry_after_s: int) -> None:
    """Map intake's typed errors to status codes."""

    @app.exception_handler(InvalidEvents)
    async def _invalid(request: Request, exc: InvalidEvents) -> JSONResponse:
        errors = [FieldError(field=f, reason=r) for f, r in exc.errors]
        return problem_response(422, "Invalid events", "nothing was accepted", errors)

    @app.exception_handler(MissingIdempotency)
    async def _no_id(request: Request, exc: MissingIdempotency) -> JSONResponse:
        reason = "give each event an event_id, or the request an Idempotency-Key header"
        return problem_response(
            400,
            "Not idempotent",
            "a retry of this request could duplicate events",
            [FieldError(field=exc.field, reason=reason)],
        )

    @app.exception_handler(OutOfScope)
    async def _scope(request: Request, exc: OutOfScope) -> JSONResponse:
        return problem_response(
            403, "Forbidden", str(exc), [FieldError(field=exc.field, reason=str(exc))]
        )

    @app.exception_handler(KeyReused)
    async def _reused(request: Request, exc: KeyReused) -> JSONResponse:
        detail = "this Idempotency-Key was already used with a different request body"
        return problem_response(422, "Idempotency-Key reused", detail)

    @app.exception_handler(KeyInFlight)
    async def _in_flight(request: Request, exc: KeyInFlight) -> JSONResponse:
        detail = "a request with this Idempotency-Key is still being processed; retry shortly"
        return problem_response(409, "Request in progress", detail, headers={"Retry-After": "1"})

    @app.exception_handler(KafkaUnavailable)
    async def _kafka(request: Request, exc: KafkaUnavailable) -> JSONResponse:
        return problem_response(
            503,
            "Kafka unavailable",
            "nothing was accepted; retry the same request (same ids) after Retry-After",
            headers={"Retry-After": str(retry_after_s)},
        )
