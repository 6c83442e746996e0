"""The intake service: the HTTP front door for upstream systems (port 8001).

Run: `uvicorn --factory intake.main:create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from intake.adapters.kafka import DeadLetters, Directory, EventSink, MapTable
from intake.adapters.telemetry import DeadLetterCollector, IntakeMetrics
from intake.api import routes
from intake.domain.events import Limits
from intake.domain.idempotency import IdempotencyCache
from intake.domain.rejections import RejectionIndex
from intake.handlers import Intake
from intake.settings import Settings
from shared.clock import Clock, SystemClock
from shared.kafka import BrokerWatch, Publisher
from shared.logs import configure_observability
from shared.service import service_app
from shared.topics import Stream


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the intake app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_observability(settings.log_level)
    clock = clock or SystemClock()
    kafka = settings.kafka
    registry = CollectorRegistry()
    watch = BrokerWatch(kafka, "intake")
    publisher = Publisher(kafka, client_id="intake", watch=watch, timeout=settings.kafka_timeout_s)
    maps = MapTable(kafka)
    # The status table is read only when some key is scoped to processes: "*" keys need no
    # handoff directory.
    scoped = any("*" not in key.processes for key in settings.api_keys)
    directory = Directory(kafka if scoped else None)
    rejections = RejectionIndex(settings.rejections_kept, group_prefix=kafka.topic_prefix)
    dead_letters = DeadLetters(kafka, rejections)
    cache = IdempotencyCache(settings.idempotency_cache_bytes)
    metrics = IntakeMetrics(registry)
    registry.register(
        DeadLetterCollector(
            rejections,
            lambda: {
                "idempotency_replies": len(cache),
                "handoff_directory": len(directory),
                "rejections": len(rejections),
            },
        )
    )
    service = Intake(
        sink=EventSink(publisher, kafka.topics.name(Stream.RAW)),
        maps=maps,
        directory=directory,
        cache=cache,
        clock=clock,
        limits=Limits(
            max_skew=timedelta(seconds=settings.max_clock_skew_s),
            max_event_bytes=settings.max_event_bytes,
        ),
        counted=metrics,
        rejections=rejections,
    )
    readers = [maps.reader, dead_letters.reader] + (
        [directory.reader] if directory.reader is not None else []
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await watch.start()
        await publisher.start()
        for reader in readers:
            await reader.start()
        yield
        for reader in readers:
            await reader.stop()
        await publisher.stop()
        await watch.stop()

    app = service_app(
        title="Baton intake",
        summary="Where upstream systems post handoffs and their lifecycle events.",
        settings=settings,
        clock=clock,
        lifespan=lifespan,
        registry=registry,
        routers=[routes.router],
        checks=lambda: {
            "kafka": watch.connected and publisher.ready,
            "process_map": maps.ready,
            "handoff_directory": directory.ready,
        },
    )
    app.state.intake = service
    app.state.maps = maps
    app.state.dead_letters = dead_letters
    routes.install_error_mapping(app, settings.retry_after_s, metrics)
    return app
