"""The routing service: the process map, and who receives each handoff under which standard
(port 8002).

Run: `uvicorn --factory routing.main:create_app`. Start-up fails at once, listing every error,
when the process map file is invalid: a half-loaded map is never applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from routing.adapters.kafka import CorruptMapRecord, MapTopic
from routing.adapters.mapfile import read_map_file
from routing.api import routes
from routing.handlers import MapState, RejectedCounter, RouteEvents, put_in_force
from routing.settings import Settings
from shared.clock import Clock, SystemClock
from shared.events import LIFECYCLE_TYPES
from shared.kafka import (
    BrokerWatch,
    ConsumerLoop,
    KafkaUnavailable,
    LagCollector,
    ProcessedCounter,
    Publisher,
)
from shared.logs import configure_observability
from shared.service import service_app
from shared.topics import Stream

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the routing app; settings come from the environment unless given.

    Raises InvalidProcessMap (its message lists every error) when the map file is invalid.
    """
    settings = settings or Settings()
    configure_observability(settings.log_level)
    clock = clock or SystemClock()
    source = str(settings.process_map)
    draft = read_map_file(settings.process_map)
    topics = settings.kafka.topics

    registry = CollectorRegistry()
    watch = BrokerWatch(settings.kafka, "routing")
    publisher = Publisher(settings.kafka, client_id="routing", watch=watch)
    maps = MapState()
    store = MapTopic(settings.kafka, publisher)
    loop = ConsumerLoop(
        kafka=settings.kafka,
        topics=[topics.name(Stream.RAW)],
        group_id=settings.kafka.group("routing"),
        handler=RouteEvents(maps, topics.name(Stream.ROUTED), RejectedCounter(registry)),
        publisher=publisher,
        dlq_topic=lambda _topic: topics.dlq(Stream.RAW),
        processed=ProcessedCounter(registry),
        known_event_types=frozenset(LIFECYCLE_TYPES),
    )
    registry.register(LagCollector(settings.kafka.group("routing"), loop.lag))
    Gauge(
        "handoff_process_map_version",
        "Version of the process map routing applies (0 until it is in force).",
        registry=registry,
    ).set_function(lambda: maps.current.version if maps.current is not None else 0)

    async def start_routing() -> None:
        """Put the map in force (retrying until Kafka answers), then start consuming."""
        # The map must be versioned (which needs the topic's last record) before the first
        # event is routed, because routed events carry the standard's version.
        delay = 0.2
        while True:
            try:
                versioned = await put_in_force(draft, source, store, clock)
                break
            except CorruptMapRecord:
                log.exception("cannot put the process map in force; routing stays not ready")
                return
            except KafkaUnavailable as exc:
                log.warning("process map not in force yet (%s); retrying in %.1fs", exc, delay)
            except Exception:
                log.exception("putting the process map in force failed; retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        maps.install(versioned)
        log.info(
            "process map version %d in force (%d processes, %d routes)",
            versioned.map.version,
            len(versioned.map.processes),
            len(versioned.map.routes),
        )
        await loop.start()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Producer first, then map and consumer; stopped in the reverse order."""
        await watch.start()
        await publisher.start()
        starting = asyncio.create_task(start_routing(), name="routing-start")
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await loop.stop()  # finishes and commits the batch in hand
            await publisher.stop()
            await watch.stop()

    app = service_app(
        title="Baton routing",
        summary="The process map: processes, routes, versioned service standards, calendars; "
        "who receives each handoff and which standard applies.",
        settings=settings,
        clock=clock,
        lifespan=lifespan,
        registry=registry,
        checks=lambda: {
            "kafka": watch.connected,
            "process_map": maps.loaded,
            "consumer": loop.running and loop.joined.is_set(),
        },
    )
    app.state.maps = maps
    app.state.consumer = loop
    app.state.validating = asyncio.Semaphore(1)
    app.include_router(routes.router)
    return app
