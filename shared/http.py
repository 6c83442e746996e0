"""What every service's HTTP side shares: one error shape, health routes, `/metrics`.

Errors are RFC 9457 problem details (`application/problem+json`) with an `errors` list naming
each bad field and why, so upstream systems can fix a request without reading our code.
Domain errors are typed exceptions (`ProblemError` subclasses) mapped here, never
HTTPException raised from a domain.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as generate_text
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import bind, bound, unbind
from shared.openapi import model_examples
from shared.problem import FieldError as FieldError  # re-exported: one error shape
from shared.problem import Problem as Problem
from shared.tracing import continued, tracing_on

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in (
        (400, "Malformed request"),
        (401, "Missing or unknown API key"),
        (403, "The API key lacks the scope (or the process) this needs"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Request too large"),
        (415, "Unsupported media type"),
        (422, "Invalid field values"),
        (429, "Over the key's rate limit: retry after the Retry-After delay"),
        (500, "Unexpected error (logged); the body says no more"),
        (503, "Not ready (Kafka unreachable, or still starting): retry after Retry-After"),
    )
}
"""The error answers a service may give, by status: documented per operation as
application/problem+json (shared.service)."""


def _example(status: int, title: str, detail: str, *errors: tuple[str, str]) -> dict[str, Any]:
    body = Problem(
        title=title,
        status=status,
        detail=detail,
        errors=[FieldError(field=f, reason=r) for f, r in errors],
    )
    return body.model_dump()


PROBLEM_EXAMPLES: dict[int, dict[str, Any]] = {
    400: _example(
        400,
        "Bad request",
        "the body is not valid JSON: unexpected character: line 1 column 2 (char 1)",
        ("body", "unexpected character: line 1 column 2 (char 1)"),
    ),
    401: _example(401, "Unauthorized", "unknown API key"),
    403: _example(403, "Forbidden", "key 'grafana' lacks the 'admin' scope"),
    404: _example(404, "Not found", "no route 'pick-requests' in the map in force"),
    409: _example(409, "Conflict", "this was already done; see detail for how to repeat it"),
    413: _example(
        413,
        "Payload too large",
        "the body is over 8388608 bytes",
        ("body", "at most 8388608 bytes"),
    ),
    415: _example(415, "Unsupported media type", "send the body as application/yaml"),
    422: _example(
        422,
        "Invalid request",
        "some fields are invalid",
        ("priority", "Input should be 'P1', 'P2', 'P3' or 'P4'"),
    ),
    429: _example(
        429,
        "Too many requests",
        "key 'erp' is limited to 50 requests/s (bursts of 100); retry after the Retry-After delay",
    ),
    500: _example(500, "Internal error", "an unexpected error was logged"),
    503: _example(503, "Service unavailable", "Kafka unreachable; retry after Retry-After"),
}
"""An example problem body per status, shown where an operation gives none of its own."""


class ProblemError(Exception):
    """A typed error with an HTTP status: raise subclasses from domain or api code."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Unavailable(ProblemError):
    status = 503
    title = "Service unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    errors: Iterable[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = Problem(title=title, status=status, detail=detail, errors=list(errors))
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def field_path(loc: Sequence[int | str]) -> str:
    """('body', 'events', 0, 'data', 'kind') -> 'events[0].data.kind'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_errors(errors: Iterable[Any]) -> list[FieldError]:
    """Pydantic/FastAPI error dicts as field errors."""
    out = []
    for err in errors:
        reason = str(err.get("msg", "invalid"))
        reason = reason.removeprefix("Value error, ")
        out.append(FieldError(field=field_path(err.get("loc", ())), reason=reason))
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the problem shape; an unexpected exception is a logged 500."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = "; ".join(str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors)
            return problem_response(400, "Malformed JSON", f"the body is not valid JSON: {detail}")
        return problem_response(
            422, "Invalid request", "some fields are invalid", validation_errors(errors)
        )

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Called outside the middlewares, so the request id is bound (and returned) again here.
        request_id = request.scope.get("state", {}).get("request_id")
        with bound(request_id=request_id):
            log.exception("unexpected error on %s %s", request.method, request.url.path)
        headers = {"X-Request-ID": request_id} if request_id else None
        return problem_response(
            500, "Internal error", "an unexpected error was logged", headers=headers
        )


class Liveness(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra=model_examples({"status": "live"}))

    status: Literal["live"] = "live"


_READY = {"status": "ready", "checks": {"kafka": True, "process_map": True}}
_NOT_READY = {"status": "not ready", "checks": {"kafka": False, "process_map": True}}


class Readiness(BaseModel):
    """Whether every check passes (Kafka joined, tables read, ...), check by check."""

    model_config = ConfigDict(json_schema_extra=model_examples(_READY, _NOT_READY))

    status: Literal["ready", "not ready"]
    checks: dict[str, bool]


def health_router(checks: Callable[[], dict[str, bool]]) -> APIRouter:
    """`/health/live` (the process answers) and `/health/ready` (every check passes)."""
    router = APIRouter(tags=["health"])

    @router.get("/health/live", response_model=Liveness)
    async def live() -> Liveness:
        """The liveness probe: 200 while the process answers (no dependency is checked)."""
        return Liveness()

    @router.get(
        "/health/ready",
        response_model=Readiness,
        responses={
            503: {
                "model": Readiness,
                "description": "Not ready: the failing checks are false (not a problem body)",
                "content": {"application/json": {"example": _NOT_READY}},
            }
        },
    )
    async def ready() -> JSONResponse:
        """The readiness probe: 200 when every check passes (Kafka joined, what the service
        reads from Kafka loaded), 503 naming the failing checks otherwise."""
        results = checks()
        ok = all(results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": results},
            status_code=200 if ok else 503,
        )

    return router


Render = Callable[[bool], bytes]
"""Renders the exposition: `render(openmetrics)` -> the body in that format."""


def registry_renderer(registry: CollectorRegistry) -> Render:
    """client_python's rendering of a registry."""

    def render(openmetrics: bool) -> bytes:
        if openmetrics:
            body: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
            return body
        return generate_text(registry)

    return render


_EXPOSITION = """\
# HELP handoff_http_requests_total HTTP requests answered, by route template, method and status.
# TYPE handoff_http_requests_total counter
handoff_http_requests_total{method="POST",route="/v1/events",status="202"} 1520.0
"""


def metrics_router(render: Render, token: str | None = None) -> APIRouter:
    """`/metrics`: Prometheus text, or OpenMetrics (with exemplars) when the scraper asks;
    behind `Authorization: Bearer <token>` when a token is set (Prometheus' `authorization`)."""
    router = APIRouter(tags=["metrics"])
    expected = f"Bearer {token}".encode() if token else None

    @router.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text format 0.0.4, or OpenMetrics 1.0 (with "
                "exemplars) when the Accept header asks for application/openmetrics-text",
                "content": {
                    CONTENT_TYPE_LATEST: {"schema": {"type": "string"}, "example": _EXPOSITION},
                    OPENMETRICS_TYPE: {
                        "schema": {"type": "string"},
                        "example": _EXPOSITION + "# EOF\n",
                    },
                },
            },
            401: {"model": Problem, "description": "metrics token set and not presented"},
        },
    )
    async def metrics(request: Request) -> Response:
        """The service's metrics for Prometheus to scrape: text format 0.0.4, or OpenMetrics
        1.0 with exemplars when the Accept header asks for application/openmetrics-text."""
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return problem_response(
                    401,
                    "Unauthorized",
                    "this /metrics needs 'Authorization: Bearer <metrics token>'",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            return Response(render(True), media_type=OPENMETRICS_TYPE)
        return Response(render(False), media_type=CONTENT_TYPE_LATEST)

    return router


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,200}")


class RequestTelemetry:
    """ASGI middleware, the outermost: what every request is observed by, in one pass.

    - an id -- the caller's `X-Request-ID` when usable (1-200 of `A-Z a-z 0-9 . _ : / + = @
      -`), else a new one -- returned in the `X-Request-ID` response header and bound to every
      log line, and every Kafka record, the request causes;
    - the caller's W3C `traceparent` continued (a server span when tracing is on,
      shared.tracing; FastAPI's own instrumentation is off, see shared.service);
    - `handoff_http_requests_total{route, method, status}` and
      `handoff_http_request_duration_seconds{route}`, labelled by the route's template (never
      the raw path, so ids never become label values);
    - a line per request at DEBUG.
    """

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self._requests = Counter(
            "handoff_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "handoff_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Bind the request's id and trace around the request; count and time it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = None
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
            elif name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        method = scope.get("method", "")
        token = bind({"request_id": request_id})
        try:
            if carrier or tracing_on():
                with continued(carrier, method, SpanKind.SERVER) as span:
                    try:
                        await self.app(scope, receive, sending)
                    finally:
                        if span is not None:
                            template = _template(scope)
                            span.update_name(f"{method} {template}")
                            span.set_attribute("http.request.method", method)
                            span.set_attribute("http.route", template)
                            span.set_attribute("http.response.status_code", status)
            else:  # no trace to continue or start: no context to enter
                await self.app(scope, receive, sending)
        finally:
            unbind(token)
            template = _template(scope)
            key = (template, method, status)
            children = self._children.get(key)
            if children is None:  # client_python's labels() locks and validates: once per key
                children = self._children[key] = (
                    self._requests.labels(template, method, str(status)),
                    self._duration.labels(template),
                )
            took = time.perf_counter() - started
            children[0].inc()
            children[1].observe(took)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s %s %d in %.1f ms",
                    method,
                    template,
                    status,
                    took * 1000,
                    extra={"http_route": template, "http_status": status, "request_id": request_id},
                )


def _template(scope: Scope) -> str:
    """The matched route's template ("unmatched" when no route matched)."""
    return getattr(scope.get("route"), "path", None) or "unmatched"
