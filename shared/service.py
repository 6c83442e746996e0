"""The FastAPI app every service is built on: the same errors, health, metrics, keys and docs.

`service_app` is the one place the common HTTP surface is assembled, so the four services
answer alike: problem+json errors (documented as such in the OpenAPI), `/health/live` and
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
from shared.http import (
    PROBLEM_JSON,
    PROBLEM_RESPONSES,
    Render,
    RequestMetrics,
    health_router,
    install_error_handlers,
    metrics_router,
    registry_renderer,
)
from shared.settings import ServiceSettings

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI of `app` with every error response documented as application/problem+json
    (what the services really send), FastAPI's own validation-error shape removed."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                # Bodies parsed by hand bring their models' schemas along (see intake).
                components.update(operation.pop("x-baton-schemas", {}))
                for code, response in operation.get("responses", {}).items():
                    if code.isdigit() and int(code) >= 400:
                        response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
                        if code == "422":
                            response["description"] = "Invalid field values"
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
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

    `routers` are the service's own API: matched first (a request tries routes in order, and
    each included router costs its share of every request it is tried for)."""
    app = FastAPIOffline(
        title=title,
        summary=summary,
        description=description or "",
        version="1.0.0",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.keyring = keyring_for(settings.api_keys, clock, settings.rate_limit)
    install_error_handlers(app)
    built_in = len(app.router.routes)
    for router in routers:
        app.include_router(router)
    app.router.routes[:] = app.router.routes[built_in:] + app.router.routes[:built_in]
    app.include_router(health_router(checks))
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    app.include_router(metrics_router(render or registry_renderer(registry), token))
    app.add_middleware(RequestMetrics, registry=registry)
    app.openapi = _problem_openapi(app)  # type: ignore[method-assign]
    return app
