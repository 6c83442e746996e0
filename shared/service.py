"""The FastAPI app every service is built on: the same errors, health, metrics, keys and docs.

`service_app` is the one place the common HTTP surface is assembled, so the four services
answer alike: problem+json errors (documented as such in the OpenAPI, operation by operation,
with examples), a request id on every request (`X-Request-ID`, taken or made, returned, on
every log line), `/health/live` and
`/health/ready`, `/metrics` (optionally behind a bearer token), API keys from
`<SERVICE>_API_KEYS`, and `/docs` + `/redoc` served from the installed package (no CDN: the
docs work on a machine without internet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry
from starlette.types import Lifespan

from shared.auth import keyring_for
from shared.clock import Clock
from shared.heap import settled
from shared.http import (
    PROBLEM_EXAMPLES,
    PROBLEM_JSON,
    PROBLEM_RESPONSES,
    Render,
    RequestTelemetry,
    health_router,
    install_error_handlers,
    metrics_router,
    registry_renderer,
)
from shared.openapi import restore
from shared.settings import ServiceSettings

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ERROR_SCHEMAS = ("#/components/schemas/Problem", "#/components/schemas/HTTPValidationError")


def _errors_of(operation: dict[str, Any]) -> set[int]:
    """The errors any operation of this shape can answer, besides those its route declares:
    an unexpected error (500); with a key, 401/403/429; with parameters or a body, 422; with
    a body, 400 (not JSON, not UTF-8) and 413 (too large)."""
    codes = {500}
    if operation.get("security"):
        codes |= {401, 403, 429}
    if operation.get("parameters") or operation.get("requestBody"):
        codes.add(422)
    if operation.get("requestBody"):
        codes |= {400, 413}
    return codes


def _is_problem(response: dict[str, Any]) -> bool:
    """True unless the route documents this error with a body of its own (e.g. readiness)."""
    schemas = [m.get("schema", {}).get("$ref") for m in response.get("content", {}).values()]
    return all(ref in (None, *_ERROR_SCHEMAS) for ref in schemas)


def _document_errors(operation: dict[str, Any]) -> None:
    """Every error the operation can answer, as application/problem+json with an example."""
    responses = operation.setdefault("responses", {})
    for code in _errors_of(operation):
        responses.setdefault(str(code), {"description": PROBLEM_RESPONSES[code]["description"]})
    for code, response in responses.items():
        if not (code.isdigit() and int(code) >= 400 and _is_problem(response)):
            continue
        given = [m["example"] for m in response.get("content", {}).values() if "example" in m]
        example = given[0] if given else PROBLEM_EXAMPLES.get(int(code))
        media: dict[str, Any] = {"schema": _PROBLEM_REF}
        if example is not None:
            media["example"] = example
        response["content"] = {PROBLEM_JSON: media}
        if code == "422" and response.get("description") == "Validation Error":
            response["description"] = PROBLEM_RESPONSES[422]["description"]


def _example_of(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """An example of a value of `schema`: its own, or its model's first (pydantic's
    `json_schema_extra={"examples": [...]}`), a list of one for an array; None if none."""
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example_of(components.get(ref.rsplit("/", 1)[-1], {}), components)
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        item = _example_of(schema["items"], components)
        return None if item is None else [item]
    for option in schema.get("anyOf", schema.get("oneOf", [])):
        found = _example_of(option, components)
        if found is not None:
            return found
    return None


def _show_examples(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """Answers (2xx) show their model's example where the route gives none."""
    for code, response in operation.get("responses", {}).items():
        if not code.startswith("2"):
            continue
        for media in response.get("content", {}).values():
            if "example" in media or "examples" in media:
                continue
            example = _example_of(media.get("schema", {}), components)
            if example is not None:
                media["example"] = example


def _problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI of `app` as it really answers: every operation with the errors it can
    give, each as application/problem+json (FastAPI's own validation-error shape removed),
    with examples of errors and answers."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        restore(schema)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                # Bodies parsed by hand bring their models' schemas along (see intake).
                components.update(operation.pop("x-baton-schemas", {}))
                _document_errors(operation)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _show_examples(operation, components)
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        components["Problem"]["description"] = (
            "RFC 9457 problem details, the body of every error (application/problem+json): "
            "`errors` names each bad field and why."
        )
        app.openapi_schema = schema
        return schema

    return openapi


def service_app(
    *,
    title: str,
    summary: str,
    settings: ServiceSettings,
    clock: Clock,
    lifespan: Lifespan[FastAPI],
    registry: CollectorRegistry,
    checks: Callable[[], dict[str, bool]],
    render: Render | None = None,
    description: str | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """A service's app with the common surface installed; refuses to start without keys.

    `routers` are the service's own API, matched first (a request tries routes in order).
    Their routes join the app's own list, not as included routers: FastAPI resolves an
    included router's routes again on every request it is tried for."""
    app = FastAPIOffline(
        title=title,
        summary=summary,
        description=description or "",
        version="1.0.0",
        lifespan=lambda app: settled(lifespan(app)),
        # Baton observes requests itself (RequestTelemetry: metrics, request id, its own
        # spans when tracing is on); FastAPI's built-in OpenTelemetry would trace every
        # request twice, and asks the environment three times per request whether to.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.keyring = keyring_for(settings.api_keys, clock, settings.rate_limit)
    install_error_handlers(app)
    built_in = list(app.router.routes)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    app.router.routes[:] = [
        route
        for router in (
            *routers,
            health_router(checks),
            metrics_router(render or registry_renderer(registry), token),
        )
        for route in router.routes
    ] + built_in
    app.add_middleware(RequestTelemetry, registry=registry)
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    return app
