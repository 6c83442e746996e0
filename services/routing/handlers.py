"""routing's use cases: put the process map in force at start-up, route each raw lifecycle event.

Delivery semantics of the routing consumer (driven by shared.kafka.ConsumerLoop, group
"routing"): at-least-once from `handoff.events.v1` to `handoff.routed.v1`; the routed event keeps
the raw event's id and key (the handoff id), so downstream de-duplication by event_id absorbs a
replay and one partition keeps a handoff's order. Routing is stateless per handoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from routing.domain.catalog import Catalog
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Change, Versioned, next_map
from shared.clock import Clock
from shared.contracts import MapChangesV1, ProcessMapV1, holidays_data_version
from shared.events import Envelope, HandoffOpeningV1
from shared.heap import gc_paused
from shared.kafka import Outbound, Rejected
from shared.routes import RejectReason, Router, RoutingError

log = logging.getLogger(__name__)

PRODUCER = "routing"


class MapStore(Protocol):
    """Where the published map lives (the compacted map topic)."""

    async def read_current(self) -> ProcessMapV1 | None:
        """The last published map, None if none was."""
        ...

    async def publish(self, pmap: ProcessMapV1, changes: MapChangesV1 | None = None) -> None:
        """Publish a new map and wait for the acknowledgement."""
        ...


@dataclass(frozen=True)
class Provenance:
    """Where a map comes from: its file, and the revision and author if the deployment says
    (ROUTING_MAP_REVISION, ROUTING_MAP_AUTHOR: e.g. the git commit and its author)."""

    source: str
    revision: str = ""
    author: str = ""


class MapState:
    """The process map this instance applies; nothing until it is versioned and published."""

    def __init__(self) -> None:
        self.current: ProcessMapV1 | None = None
        self.router: Router | None = None
        self.catalog: Catalog | None = None
        self.versioned: Versioned | None = None

    @property
    def loaded(self) -> bool:
        """True once a versioned map is in force."""
        return self.current is not None

    def install(self, versioned: Versioned) -> None:
        """Put a versioned map in force (indexes are built before the swap)."""
        router, catalog = Router(versioned.map), Catalog(versioned.map)
        self.versioned = versioned
        self.router, self.catalog, self.current = router, catalog, versioned.map


async def put_in_force(
    draft: ProcessMapDraft, origin: Provenance, store: MapStore, clock: Clock
) -> Versioned:
    """Version the loaded map against the published one; publish it if anything changed."""
    previous = await store.read_current()
    with gc_paused():
        versioned = next_map(
            draft,
            previous,
            now=clock.now(),
            source=origin.source,
            revision=origin.revision,
            author=origin.author,
            holidays_version=holidays_data_version(),
        )
    edits = [
        f"{s.route_id} v{s.version} ({s.change.value})"
        for s in versioned.standards
        if s.change is not Change.UNCHANGED
    ]
    if edits or versioned.removed_routes:
        # A summary, never one line per route: a 10,000-route map would log megabytes.
        log.info(
            "standards: %s; removed routes: %s",
            _summary(edits, "none changed"),
            _summary(versioned.removed_routes, "none"),
        )
    if versioned.publish:
        await store.publish(versioned.map, versioned.changes())
    else:
        log.info("process map unchanged: version %d stays in force", versioned.map.version)
    return versioned


def _summary(items: Sequence[str], empty: str, most: int = 10) -> str:
    if not items:
        return empty
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return f"{len(items)}: " + ", ".join(items[:most]) + more


class MapKeeper:
    """Puts process maps in force, one at a time: the file's at start-up, and the file's again
    on each reload. A map with errors changes nothing: the one in force stays."""

    def __init__(
        self,
        state: MapState,
        store: MapStore,
        clock: Clock,
        origin: Provenance,
        load: Callable[[], ProcessMapDraft],
    ) -> None:
        self._state = state
        self._store = store
        self._clock = clock
        self._origin = origin
        self._load = load
        self._lock = asyncio.Lock()

    async def put(self, draft: ProcessMapDraft, origin: Provenance | None = None) -> Versioned:
        """Version `draft` against the published map, publish it if it changed, apply it."""
        async with self._lock:
            versioned = await put_in_force(draft, origin or self._origin, self._store, self._clock)
            self._state.install(versioned)
        log.info(
            "process map version %d in force (%d processes, %d groups, %d routes)",
            versioned.map.version,
            len(versioned.map.processes),
            len(versioned.map.groups),
            len(versioned.map.routes),
        )
        return versioned

    async def reload(self, revision: str | None = None, author: str | None = None) -> Versioned:
        """Read the map file again (on a worker thread: a large map takes seconds), check it
        and put it in force, recorded with the revision and author given (else the
        settings'); raises InvalidProcessMap listing every error."""
        draft = await asyncio.to_thread(self._load)
        origin = replace(
            self._origin,
            revision=self._origin.revision if revision is None else revision,
            author=self._origin.author if author is None else author,
        )
        return await self.put(draft, origin)


class RejectedCounter:
    """`handoff_routing_rejected_total{reason}`: events routing could not route, by category."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "handoff_routing_rejected",
            "Opening events dead-lettered because the process map cannot route them.",
            ["reason"],
            registry=registry,
        )
        for reason in RejectReason:  # pre-initialised, so rate() never goes empty
            self.counter.labels(reason.value)

    def inc(self, reason: RejectReason) -> None:
        """Count one rejected event."""
        self.counter.labels(reason.value).inc()


class RouteEvents:
    """The consumer's handler: attach route and standard to opening events, pass the rest on."""

    def __init__(self, state: MapState, routed_topic: str, rejected: RejectedCounter) -> None:
        self._state = state
        self._topic = routed_topic
        self._rejected = rejected

    async def __call__(self, envelope: Envelope) -> Sequence[Outbound]:
        """Route one raw event; raises Rejected (-> dead letter) when it cannot be routed."""
        router = self._state.router
        if router is None:  # the consumer starts only once a map is in force
            raise RuntimeError("no process map in force yet")
        payload = envelope.payload
        if isinstance(payload, HandoffOpeningV1):
            try:
                route = router.resolve(payload)
            except RoutingError as exc:
                self._rejected.inc(exc.reason)
                raise Rejected(exc.reason.value, exc.message) from exc
            return [Outbound(self._topic, envelope.with_route(route, producer=PRODUCER))]
        if not envelope.event_type.startswith("handoff."):
            raise Rejected(
                "unexpected-event", f"{envelope.event_type} does not belong on the raw topic"
            )
        # Later lifecycle events carry no route: sla knows the handoff and its pinned standard.
        return [Outbound(self._topic, envelope.model_copy(update={"producer": PRODUCER}))]
