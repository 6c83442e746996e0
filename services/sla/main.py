"""The sla service: the clocks, warnings, breaches, and the handoff status API (port 8003).

Run: `uvicorn --factory sla.main:create_app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.clock import Clock, SystemClock
from shared.kafka import BrokerWatch, TableReader
from shared.logs import configure_observability
from shared.service import service_app
from shared.topics import Stream
from shared.tracing import configure_tracing
from sla.adapters.status_table import StatusTable
from sla.adapters.telemetry import HeldCollector, SlaTelemetry
from sla.api import routes
from sla.consumer import SlaConsumer
from sla.queries import SlaQueries
from sla.settings import Settings

US = 1_000_000


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the sla app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_observability("sla", settings.log_level, settings.log_format)
    configure_tracing("sla", settings.tracing)
    clock = clock or SystemClock()
    registry = CollectorRegistry()
    telemetry = SlaTelemetry(registry, settings.kafka.topics.name(Stream.DECISIONS))
    consumer = SlaConsumer(
        settings.kafka,
        clock=clock,
        telemetry=telemetry,
        group=settings.kafka.group("sla"),
        retention_us=settings.closed_retention_s * US,
        orphan_retention_us=settings.orphan_retention_s * US,
        idle_us=settings.history_idle_s * US,
        max_records=settings.max_records,
    )
    registry.register(HeldCollector(lambda: {p: len(b) for p, b in consumer.books().items()}))
    # Every instance reads the whole status table: any instance answers any query.
    table = StatusTable()
    reader = TableReader(settings.kafka, [settings.kafka.topics.name(Stream.STATUS)], table.put)
    watch = BrokerWatch(settings.kafka, "sla")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await watch.start()
        await reader.start()
        await consumer.start()
        yield
        await consumer.stop()
        await reader.stop()
        await watch.stop()

    app = service_app(
        title="Baton sla",
        summary="Handoff clocks on business calendars: status, at-risk and overdue lists, cases.",
        settings=settings,
        clock=clock,
        lifespan=lifespan,
        registry=registry,
        routers=[routes.router],
        checks=lambda: {
            "kafka": watch.connected,
            "partitions": consumer.ready,
            "status_table": reader.ready,
        },
    )
    app.state.consumer = consumer
    app.state.queries = SlaQueries(table, clock)
    return app
