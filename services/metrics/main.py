"""The metrics service: Prometheus exposition of Baton's handoffs, and the report store with its
reports, management-review pages and process-mining exports (port 8004).

Run: `uvicorn --factory metrics.main:create_app --port 8004` -- as ONE process (no
`--workers`, no client_python multiprocess mode): the scrape-time gauges are custom collectors
over in-memory tables and histograms carry exemplars, both of which multiprocess mode drops;
every worker would also read the tables and split the consumer group's partitions, so each
would expose only a part. Scale out with shards instead: METRICS_SHARDS=N instances, each with
its own METRICS_SHARD (0 .. N-1), expose each pair's series from exactly one of them (README,
Scaling the metrics service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter

from metrics.adapters.exposition import Exposition
from metrics.adapters.history import HistoryStore, StoreClosed
from metrics.adapters.instruments import CatalogGauges, Instruments, StateGauges
from metrics.api import routes
from metrics.consumer import MetricsConsumer
from metrics.domain.history import naive_utc
from metrics.domain.pairs import PairMemory
from metrics.domain.reports import StoreState
from metrics.domain.shards import Shard
from metrics.domain.status import StateView, StatusBoard
from metrics.handlers import HistoryRecorder, MetricsService
from metrics.queries import ReportQueries
from metrics.settings import Settings
from shared.clock import Clock, SystemClock
from shared.http import problem_response
from shared.kafka import ProcessedCounter
from shared.logs import configure_observability
from shared.service import service_app
from shared.topics import Stream
from shared.tracing import configure_tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the metrics app; settings come from the environment unless given."""
    settings = settings or Settings()
    # Also switches the `_created` series off.
    configure_observability("metrics", settings.log_level, settings.log_format)
    configure_tracing("metrics", settings.tracing)
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
    # The report store lives on shard 0 only, and keeps every pair (README, Reports).
    store = HistoryStore(settings.history_path) if shard.index == 0 else None
    recorder: HistoryRecorder | None = None
    if store is not None:
        stored = Counter(
            "handoff_history_records",
            "Records the report store read, by topic and result (ok: stored; invalid: "
            "unreadable, skipped).",
            ["topic", "result"],
            registry=registry,
        )
        recorder = HistoryRecorder(
            store, lambda topic, result, n: stored.labels(topic, result).inc(n)
        )
        service.map_listeners.append(recorder.on_process_map)
    kafka = MetricsConsumer(settings, service, registry, processed, recorder)

    def store_state() -> StoreState:
        history = kafka.history
        return StoreState(
            caught_up=history is not None and history.caught_up.is_set(),
            lag_records=kafka.history_lag(),
        )

    queries = (
        None
        if store is None
        else ReportQueries(
            store,
            state=store_state,
            process_map=lambda: service.process_map,
            sla_url=settings.sla_url,
            clock_now=clock.now,
        )
    )
    state = StateGauges(StateView(board), lambda: service.catalog, clock)
    targets = CatalogGauges(
        lambda: service.catalog, shard, lambda: instruments.in_use.union(board.open_keys())
    )
    exposition = Exposition(registry, [instruments.render, state.render, targets.render])

    async def purge_daily(store: HistoryStore) -> None:
        # History past its keep period leaves the store; one sleep per day, on the clock.
        while True:
            cutoff = clock.now() - timedelta(days=settings.history_keep_days)
            deleted = await asyncio.to_thread(store.purge, naive_utc(cutoff))
            if deleted:
                log.info("report store: %d rows older than %s deleted", deleted, cutoff)
            await clock.sleep_until(clock.now() + timedelta(days=1))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        purger: asyncio.Task[None] | None = None
        if store is not None:
            store.open()  # open since create_app; again if an earlier lifespan closed it
            purger = asyncio.create_task(purge_daily(store), name="history-purge")
        await kafka.start()
        try:
            yield
        finally:
            if purger is not None:
                purger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purger
            await kafka.stop()
            if store is not None:
                store.close()

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
        routers=[routes.router],
    )
    app.state.service = service
    app.state.instruments = instruments
    app.state.kafka = kafka
    app.state.store = store
    app.state.queries = queries

    @app.exception_handler(StoreClosed)
    async def _closed(request: Request, exc: StoreClosed) -> JSONResponse:
        # A request that arrives while the service stops: retry elsewhere or a bit later.
        return problem_response(503, "Service unavailable", str(exc), headers={"Retry-After": "5"})

    return app
