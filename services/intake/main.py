"""The intake service: the HTTP front door for upstream systems (port 8001).

Run: `uvicorn --factory intake.main:create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from intake.adapters.kafka import EventSink
from intake.api import routes
from intake.api.deps import KeyRing
from intake.api.metrics import RequestMetrics, request_counter
from intake.domain.idempotency import IdempotencyCache
from intake.handlers import Intake
from intake.settings import Settings
from shared.clock import Clock, SystemClock
from shared.http import PROBLEM_RESPONSES, configure_observability, install_common
from shared.kafka import Publisher
from shared.topics import Stream


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the intake app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_observability(settings.log_level)
    clock = clock or SystemClock()
    registry = CollectorRegistry()
    publisher = Publisher(settings.kafka, client_id="intake")
    sink = EventSink(publisher, settings.kafka.topics.name(Stream.RAW))
    service = Intake(
        sink,
        clock,
        IdempotencyCache(settings.idempotency_cache),
        timedelta(seconds=settings.max_clock_skew_s),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        yield
        await publisher.stop()

    app = FastAPI(
        title="Baton intake",
        summary="Where upstream systems post handoffs and their lifecycle events.",
        version="1.0.0",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.state.settings = settings
    app.state.intake = service
    app.state.keyring = KeyRing(settings.api_keys)
    install_common(app, registry, checks=lambda: {"kafka": publisher.ready})
    routes.install_error_mapping(app, settings.retry_after_s)
    app.include_router(routes.router)
    app.add_middleware(RequestMetrics, counter=request_counter(registry))
    return app
