"""The metrics service: Prometheus exposition of Baton's handoffs (port 8004).

Run: `uvicorn --factory metrics.main:create_app --port 8004` -- as ONE process (no
`--workers`, no client_python multiprocess mode): the scrape-time gauges are custom collectors
over in-memory tables and histograms carry exemplars, both of which multiprocess mode drops;
every worker would also read the tables and split the consumer group's partitions, so each
would expose only a part. Scale out with shards instead: METRICS_SHARDS=N instances, each with
its own METRICS_SHARD (0 .. N-1), expose each pair's series from exactly one of them (README,
Scaling the metrics service).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from metrics.adapters.exposition import Exposition
from metrics.adapters.instruments import CatalogGauges, Instruments, StateGauges
from metrics.consumer import MetricsConsumer
from metrics.domain.pairs import PairMemory
from metrics.domain.shards import Shard
from metrics.domain.status import StateView, StatusBoard
from metrics.handlers import MetricsService
from metrics.settings import Settings
from shared.clock import Clock, SystemClock
from shared.kafka import ProcessedCounter
from shared.logs import configure_observability
from shared.service import service_app
from shared.topics import Stream


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the metrics app; settings come from the environment unless given."""
    settings = settings or Settings()
    configure_observability(settings.log_level)  # also switches `_created` series off
    clock = clock or SystemClock()
    registry = CollectorRegistry()  # the app's own, never the global one
    processed = ProcessedCounter(registry)
    instruments = Instruments()
    board = StatusBoard()
    topics = settings.kafka.topics
    shard = Shard(settings.shard, settings.shards)
    service = MetricsService(
        instruments,
        board,
        PairMemory(settings.pair_memory),
        processed,
        shard=shard,
        changelog_topic=topics.name(Stream.METRICS_STATE),
        map_topic=topics.name(Stream.PROCESS_MAP),
        status_topic=topics.name(Stream.STATUS),
    )
    kafka = MetricsConsumer(settings, service, registry, processed)
    state = StateGauges(StateView(board), lambda: service.catalog, clock)
    targets = CatalogGauges(
        lambda: service.catalog, shard, lambda: instruments.in_use.union(board.open_keys())
    )
    exposition = Exposition(registry, [instruments.render, state.render, targets.render])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await kafka.start()
        try:
            yield
        finally:
            await kafka.stop()

    # Our exposition renders the families incrementally (client_python takes ~1 s at scale).
    app = service_app(
        title="Baton metrics",
        summary="Prometheus metrics of handoffs between teams: outcomes against the agreed "
        "service standards, durations, open and overdue items, rework, satisfaction.",
        settings=settings,
        clock=clock,
        lifespan=lifespan,
        registry=registry,
        checks=kafka.checks,
        render=exposition.render,
    )
    app.state.service = service
    app.state.instruments = instruments
    app.state.kafka = kafka
    return app
