"""The sla service: the clocks, warnings, breaches, and the handoff status API (port 8003).

Run: `uvicorn --factory sla.main:create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.clock import Clock, SystemClock
from shared.kafka import BrokerWatch
from shared.logs import configure_observability
from shared.service import service_app
from sla.adapters.engine import SlaEngine
from sla.api import routes
from sla.settings import Settings

US = 1_000_000


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the sla app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_observability(settings.log_level)
    clock = clock or SystemClock()
    registry = CollectorRegistry()
    engine = SlaEngine(
        kafka=settings.kafka,
        clock=clock,
        registry=registry,
        group=settings.kafka.group("sla"),
        retention_us=settings.closed_retention_s * US,
        orphan_retention_us=settings.orphan_retention_s * US,
        max_records=settings.max_records,
    )

    watch = BrokerWatch(settings.kafka, "sla")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await watch.start()
        await engine.start()
        yield
        await engine.stop()
        await watch.stop()

    app = service_app(
        title="Baton sla",
        summary="Handoff clocks on business calendars: status, at-risk and overdue lists, cases.",
        settings=settings,
        clock=clock,
        lifespan=lifespan,
        registry=registry,
        routers=[routes.router],
        checks=lambda: {"kafka": watch.connected, "partitions": engine.ready},
    )
    app.state.engine = engine
    return app
