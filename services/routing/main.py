"""The routing service: the process map, and who receives each handoff under which standard
(port 8002).

Run: `uvicorn --factory routing.main:create_app`. Start-up fails at once, listing every error,
when the process map file is invalid: a half-loaded map is never applied. A changed file is
put in force by POST /v1/map/reload (admin) or SIGHUP, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from routing.adapters.kafka import MapTopic
from routing.adapters.mapfile import read_map_file
from routing.adapters.webhooks import WebhookClient
from routing.api import routes
from routing.consumer import Notifications, RoutingConsumer
from routing.domain.outbox import RetryPolicy
from routing.domain.processmap import InvalidProcessMap
from routing.handlers import (
    DeliverNotifications,
    MapKeeper,
    MapState,
    Notices,
    NotificationCounters,
    OutboxTopics,
    PendingCollector,
    Provenance,
)
from routing.queries import MapQueries, OutboxQueries
from routing.settings import Settings
from shared.clock import Clock, SystemClock
from shared.kafka import BrokerWatch, ProcessedCounter, Publisher
from shared.logs import configure_observability
from shared.service import service_app
from shared.topics import Stream
from shared.tracing import configure_tracing

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """Build the routing app; settings come from the environment unless given.

    Raises InvalidProcessMap (its message lists every error) when the map file is invalid.
    """
    settings = settings or Settings()
    configure_observability("routing", settings.log_level, settings.log_format)
    configure_tracing("routing", settings.tracing)
    clock = clock or SystemClock()
    path, limit = settings.process_map, settings.max_map_bytes
    draft = read_map_file(path, limit, checked_at=clock.now())
    registry = CollectorRegistry()
    watch = BrokerWatch(settings.kafka, "routing")
    publisher = Publisher(settings.kafka, client_id="routing", watch=watch)
    maps = MapState()
    store = MapTopic(settings.kafka, publisher, settings.map_part_bytes)
    origin = Provenance(str(path), settings.map_revision, settings.map_author)
    keeper = MapKeeper(
        maps, store, clock, origin, lambda: read_map_file(path, limit, checked_at=clock.now())
    )
    topics = settings.kafka.topics
    counters = NotificationCounters(registry)
    notices = Notices(topics.name(Stream.NOTIFICATIONS), clock, counters)
    processed = ProcessedCounter(registry)
    webhooks: WebhookClient | None = None
    notifications: Notifications | None = None
    deliveries: DeliverNotifications | None = None
    if settings.notifications:
        webhooks = WebhookClient(settings.webhook_timeout_s)
        deliveries = DeliverNotifications(
            sender=webhooks,
            writer=publisher,
            topics=OutboxTopics(
                topics.name(Stream.NOTIFICATIONS), topics.dlq(Stream.NOTIFICATIONS)
            ),
            secrets={k: v.get_secret_value().encode() for k, v in settings.webhook_secrets.items()},
            policy=RetryPolicy(
                attempts=settings.webhook_attempts,
                first=timedelta(seconds=settings.webhook_backoff_s),
                cap=timedelta(seconds=settings.webhook_backoff_max_s),
            ),
            clock=clock,
            counters=counters,
            concurrency=settings.webhook_concurrency,
        )
        registry.register(PendingCollector(deliveries))
        notifications = Notifications(
            settings.kafka, maps, publisher, processed, notices, deliveries, settings.sla_url
        )
    consumer = RoutingConsumer(
        settings.kafka,
        maps,
        keeper,
        publisher,
        registry,
        draft,
        clock=clock,
        max_chain_depth=settings.max_chain_depth,
        sla_url=settings.sla_url,
        notices=notices,
        notifications=notifications,
        processed=processed,
    )
    Gauge(
        "handoff_process_map_version",
        "Version of the process map routing applies (0 until it is in force).",
        registry=registry,
    ).set_function(lambda: maps.current.version if maps.current is not None else 0)
    queries = MapQueries(maps, store)
    outbox = OutboxQueries(deliveries.outbox if deliveries is not None else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Producer first, then map and consumer; stopped in the reverse order."""
        await watch.start()
        await publisher.start()
        await consumer.start()
        hangup = SighupReload(keeper, maps) if settings.reload_on_sighup else None
        if hangup is not None:
            hangup.install()
        try:
            yield
        finally:
            if hangup is not None:
                await hangup.remove()
            await consumer.stop()
            if webhooks is not None:
                await webhooks.close()
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
        routers=[routes.router],
        checks=lambda: {"kafka": watch.connected, **consumer.checks()},
    )
    app.state.maps = maps
    app.state.queries = queries
    app.state.outbox = outbox
    app.state.book = consumer.book
    app.state.keeper = keeper
    app.state.consumer = consumer.loop
    app.state.routing = consumer
    app.state.validating = asyncio.Semaphore(1)
    return app


class SighupReload:
    """SIGHUP re-reads the map file, like POST /v1/map/reload: the Unix way to say "the
    configuration changed". Installed only where the event loop can take signals (the main
    thread); an invalid file is logged with every error and the map in force stays."""

    def __init__(self, keeper: MapKeeper, maps: MapState) -> None:
        self._keeper = keeper
        self._maps = maps
        self._task: asyncio.Task[None] | None = None
        self._installed = False
        self.finished = 0  # reloads SIGHUP asked for that have ended, put in force or not

    def install(self) -> None:
        """Take SIGHUP on the running loop, if this thread may."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)
        except (ValueError, RuntimeError, NotImplementedError):
            return  # not the main thread (tests), or no signals on this platform
        self._installed = True

    async def remove(self) -> None:
        """Stop taking SIGHUP; wait for a reload under way."""
        if self._installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _hangup(self) -> None:
        if self._task is not None and not self._task.done():
            log.warning("SIGHUP: a reload is already under way")
            return
        self._task = asyncio.create_task(self._reload(), name="routing-sighup-reload")

    async def _reload(self) -> None:
        try:
            await self._put_in_force()
        finally:
            self.finished += 1

    async def _put_in_force(self) -> None:
        if not self._maps.loaded:
            log.warning("SIGHUP ignored: the first map is not in force yet")
            return
        try:
            versioned = await self._keeper.reload()
        except InvalidProcessMap as exc:
            log.error("SIGHUP: map not reloaded, the one in force stays: %s", _head(str(exc)))
            return
        except Exception as exc:
            log.error("SIGHUP: map not reloaded, the one in force stays: %r", exc)
            return
        log.info("SIGHUP: process map version %d in force", versioned.map.version)


def _head(text: str, lines: int = 21) -> str:
    """The first lines of a long message (an invalid map's every error can be thousands)."""
    parts = text.splitlines()
    more = f"\n  ... {len(parts) - lines} more" if len(parts) > lines else ""
    return "\n".join(parts[:lines]) + more
