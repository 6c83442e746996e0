"""routing's use cases: put the process map in force at start-up, route each raw lifecycle event.

Delivery semantics of the routing consumer (driven by shared.kafka.ConsumerLoop, group
"routing"): at-least-once from `handoff.events.v1` to `handoff.routed.v1`; the routed event keeps
the raw event's id and key (the handoff id), so downstream de-duplication by event_id absorbs a
replay and one partition keeps a handoff's order. Routing is stateless per handoff.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from routing.domain.catalog import Catalog
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Change, Versioned, next_map
from shared.clock import Clock
from shared.contracts import ProcessMapV1, holidays_data_version
from shared.events import Envelope, HandoffOpeningV1
from shared.kafka import Outbound, Rejected
from shared.routes import RejectReason, Router, RoutingError

log = logging.getLogger(__name__)

PRODUCER = "routing"


class MapStore(Protocol):
    """Where the published map lives (the compacted map topic)."""

    async def read_current(self) -> ProcessMapV1 | None:
        """The last published map, None if none was."""
        ...

    async def publish(self, pmap: ProcessMapV1) -> None:
        """Publish a new map and wait for the acknowledgement."""
        ...


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
    draft: ProcessMapDraft, source: str, store: MapStore, clock: Clock
) -> Versioned:
    """Version the loaded map against the published one; publish it if anything changed."""
    previous = await store.read_current()
    versioned = next_map(
        draft,
        previous,
        now=clock.now(),
        source=source,
        holidays_version=holidays_data_version(),
    )
    edits = [
        f"{s.route_id} v{s.version} ({s.change.value})"
        for s in versioned.standards
        if s.change is not Change.UNCHANGED
    ]
    if edits or versioned.removed_routes:
        log.info(
            "standards: %s; removed routes: %s",
            ", ".join(edits) or "none changed",
            ", ".join(versioned.removed_routes) or "none",
        )
    if versioned.publish:
        await store.publish(versioned.map)
    else:
        log.info("process map unchanged: version %d stays in force", versioned.map.version)
    return versioned


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
