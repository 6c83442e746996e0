"""The routing service: the process map, and who receives each handoff under which standard
(port 8002).

Run: `uvicorn --factory routing.main:create_app`. Start-up fails at once, listing every error,
when the process map file is invalid: a half-loaded map is never applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from routing.adapters.mapfile import read_map_file
from routing.api import routes
from routing.consumer import RoutingConsumer
from routing.handlers import MapState
from routing.queries import MapQueries
from routing.settings import Settings
from shared.clock import Clock, SystemClock
from shared.http import PROBLEM_RESPONSES, configure_observability, install_common
from shared.kafka import Publisher


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the routing app; settings come from the environment unless given.

    Raises InvalidProcessMap (its message lists every error) when the map file is invalid.
    """
    settings = settings or Settings()
    configure_observability(settings.log_level)
    clock = clock or SystemClock()
    draft = read_map_file(settings.process_map, checked_at=clock.now())
    registry = CollectorRegistry()
    publisher = Publisher(settings.kafka, client_id="routing")
    maps = MapState()
    consumer = RoutingConsumer(
        settings.kafka, maps, publisher, registry, clock, draft, str(settings.process_map)
    )
    Gauge(
        "handoff_process_map_version",
        "Version of the process map routing applies (0 until it is in force).",
        registry=registry,
    ).set_function(lambda: maps.current.version if maps.current is not None else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Producer first, then map and consumer; stopped in the reverse order."""
        await publisher.start()
        await consumer.start()
        try:
            yield
        finally:
            await consumer.stop()
            await publisher.stop()

    app = FastAPI(
        title="Baton routing",
        summary="The process map: processes, routes, versioned service standards, calendars; "
        "who receives each handoff and which standard applies.",
        version="1.0.0",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.maps = maps
    app.state.queries = MapQueries(maps)
    app.state.consumer = consumer.loop
    install_common(app, registry, checks=consumer.checks)
    app.include_router(routes.router)
    return app
