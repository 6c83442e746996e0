"""routing's use cases: put the process map in force, route each raw lifecycle event, open the
next handoff of a chain, turn decisions into notifications and deliver them.

Delivery semantics of the routing consumer (driven by shared.kafka.ConsumerLoop, group
"routing"): at-least-once from `handoff.events.v1` to `handoff.routed.v1`; the routed event keeps
the raw event's id and key (the handoff id), so downstream de-duplication by event_id absorbs a
replay and one partition keeps a handoff's order. What routing must remember of an open handoff
(case, route, priority, attributes, chain depth) goes to its co-partitioned changelog
`routing.handoffs.v1` with the batch's other outputs, before the commit. A completion opens the
next handoff of its chain as a `handoff.submitted` on the raw topic (deterministic handoff and
event ids: a redelivery opens nothing twice); notifications go to the outbox
`routing.notifications.v1`, from where the outbox owner delivers them (DeliverNotifications:
at-least-once, each with its idempotency key, never again once its sent marker is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

import orjson
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routing.domain.catalog import Catalog
from routing.domain.chain import ChainEnd, HandoffFacts, NextHandoff, facts_of, next_handoff
from routing.domain.escalation import Escalations, Planned, cancel_key
from routing.domain.outbox import Outbox, Pending, RetryPolicy
from routing.domain.processmap import ProcessMapDraft
from routing.domain.versioning import Change, Versioned, next_map
from shared.clock import Clock
from shared.contracts import Frozen, MapChangesV1, ProcessMapV1, holidays_data_version
from shared.events import (
    Envelope,
    HandoffCancelledV1,
    HandoffCompletedV1,
    HandoffOpeningV1,
    HandoffRejectedV1,
    HandoffReprioritizedV1,
    HandoffSubmittedV1,
    NotificationDeadLetteredV1,
    NotificationDeliveredV1,
    NotificationReason,
    NotificationRequestedV1,
    NotificationRetriedV1,
    NotificationsCancelledV1,
    derived_id,
    make_envelope,
)
from shared.heap import gc_paused
from shared.kafka import KafkaUnavailable, Outbound, Output, Rejected, TableRow
from shared.retry import retrying
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


class FactsStore(Protocol):
    """routing's changelog of open handoffs (co-partitioned with the raw topic)."""

    async def load(self, partition: int) -> dict[str, HandoffFacts]:
        """Every open handoff of one partition."""
        ...

    def row(self, handoff_id: str, facts: HandoffFacts | None, partition: int) -> TableRow:
        """The changelog row recording `facts` (None: closed)."""
        ...


class HandoffBook:
    """What routing knows of the open handoffs on the raw partitions it consumes.

    A partition is restored from the changelog the first time one of its records is handled
    after an assignment (in the consumer's own task: nothing of it is handled before), and
    forgotten when it is revoked; in between, the handler keeps it up to date as it writes
    the rows. The previous owner committed only after its rows were acknowledged, so the
    restore sees every handoff opened before the first record it will handle.
    """

    def __init__(self, store: FactsStore) -> None:
        self._store = store
        self._partitions: dict[int, dict[str, HandoffFacts]] = {}

    async def partition(self, partition: int) -> dict[str, HandoffFacts]:
        """The open handoffs of `partition` (restored first if needed; KafkaUnavailable)."""
        found = self._partitions.get(partition)
        if found is None:
            found = await retrying(
                lambda: self._store.load(partition),
                on=(KafkaUnavailable,),
                what=f"restoring routing's handoffs of partition {partition}",
            )
            self._partitions[partition] = found
            log.info("partition %d: %d open handoffs restored", partition, len(found))
        return found

    def forget(self, partitions: Iterable[int]) -> None:
        """The partitions went to another member."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def __len__(self) -> int:
        return sum(len(p) for p in self._partitions.values())


class ChainCounter:
    """`handoff_chain_steps_total{result}`: completions that opened the next handoff, or why
    not (end of the path, depth limit, route gone, unknown handoff)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "handoff_chain_steps",
            "Completed handoffs, by what they opened along the map: opened, or why nothing.",
            ["result"],
            registry=registry,
        )
        for result in ("opened", *(end.value for end in ChainEnd)):
            self.counter.labels(result)

    def inc(self, result: str) -> None:
        """Count one completion."""
        self.counter.labels(result).inc()


class NotificationCounters:
    """The notification metrics (`handoff_notifications_*_total`), by reason or code."""

    def __init__(self, registry: CollectorRegistry) -> None:
        reasons = [r.value for r in NotificationReason]
        self.requested = Counter(
            "handoff_notifications_requested",
            "Notifications written to the outbox, by reason (a redelivered decision counts again).",
            ["reason"],
            registry=registry,
        )
        self.delivered = Counter(
            "handoff_notifications_delivered",
            "Notifications a receiver acknowledged (2xx), by reason.",
            ["reason"],
            registry=registry,
        )
        self.failed = Counter(
            "handoff_notification_attempts_failed",
            "Webhook POSTs that failed, by whether they are retried.",
            ["retried"],
            registry=registry,
        )
        self.dead = Counter(
            "handoff_notifications_dead_lettered",
            "Notifications given up and dead-lettered, by code.",
            ["code"],
            registry=registry,
        )
        self.skipped = Counter(
            "handoff_notifications_skipped",
            "Escalation steps that found nobody to tell (no contact, no webhook).",
            ["reason"],
            registry=registry,
        )
        for reason in reasons:
            self.requested.labels(reason)
            self.delivered.labels(reason)
        for code in ("refused", "retries-exhausted", "no-secret"):
            self.dead.labels(code)
        self.failed.labels("true")
        self.failed.labels("false")


class Notices:
    """Planned notifications as outbox records: each on its handoff's outbox partition."""

    def __init__(self, topic: str, clock: Clock, counters: NotificationCounters) -> None:
        self._topic = topic
        self._clock = clock
        self._counters = counters

    def outputs(self, planned: Planned, source: Envelope) -> list[Output]:
        """The records of what `source` (a decision or lifecycle event) calls for."""
        out: list[Output] = []
        for reason in planned.skipped:
            self._counters.skipped.labels(reason).inc()
        for request in planned.requests:
            self._counters.requested.labels(request.reason.value).inc()
            out.append(
                self._record(
                    request, request.notification_id, request.notification_id, request.decided_at
                )
            )
        if planned.cancel is not None:
            key = cancel_key(source.event_id)
            out.append(self._record(planned.cancel, key, key, planned.cancel.until))
        return out

    def _record(self, payload: Frozen, key: str, event_id: str, at: datetime) -> Outbound:
        handoff_id = getattr(payload, "handoff_id", key)
        return Outbound(
            self._topic,
            make_envelope(
                payload,
                key=key,
                producer=PRODUCER,
                occurred_at=at,
                recorded_at=self._clock.now(),
                event_id=event_id,
            ),
            partition_key=str(handoff_id).encode(),
        )


@dataclass(frozen=True)
class RoutingTopics:
    """Where the raw consumer's outputs go."""

    raw: str
    routed: str
    handoffs: str
    outbox: str


class RouteEvents:
    """The raw consumer's handler: attach route and standard to opening events, pass the rest
    on, remember open handoffs, open the next handoff of a chain, ask for the notifications a
    rejection calls for."""

    def __init__(
        self,
        state: MapState,
        topics: RoutingTopics,
        rejected: RejectedCounter,
        *,
        book: HandoffBook,
        store: FactsStore,
        chains: ChainCounter,
        notices: Notices,
        clock: Clock,
        max_depth: int,
        sla_url: str,
        notify: bool = True,
    ) -> None:
        self._state = state
        self._notify = notify
        self._topics = topics
        self._rejected = rejected
        self._book = book
        self._store = store
        self._chains = chains
        self._notices = notices
        self._clock = clock
        self._max_depth = max_depth
        self._sla_url = sla_url

    async def __call__(self, envelope: Envelope, partition: int) -> Sequence[Output]:
        """Route one raw event; raises Rejected (-> dead letter) when it cannot be routed."""
        router, catalog = self._state.router, self._state.catalog
        if router is None or catalog is None:  # the consumer starts only once a map is in force
            raise RuntimeError("no process map in force yet")
        payload = envelope.payload
        if isinstance(payload, HandoffOpeningV1):
            try:
                route = router.resolve(payload)
            except RoutingError as exc:
                self._rejected.inc(exc.reason)
                raise Rejected(exc.reason.value, exc.message) from exc
            out: list[Output] = [
                Outbound(self._topics.routed, envelope.with_route(route, producer=PRODUCER))
            ]
            if isinstance(payload, HandoffSubmittedV1):
                book = await self._book.partition(partition)
                facts = facts_of(
                    envelope.key, payload, route.to_process, route.standard.route_id, envelope.chain
                )
                book[envelope.key] = facts
                out.append(self._store.row(envelope.key, facts, partition))
            return out
        if not envelope.event_type.startswith("handoff."):
            raise Rejected(
                "unexpected-event", f"{envelope.event_type} does not belong on the raw topic"
            )
        # Later lifecycle events carry no route: sla knows the handoff and its pinned standard.
        out = [Outbound(self._topics.routed, envelope.model_copy(update={"producer": PRODUCER}))]
        if isinstance(payload, HandoffCompletedV1 | HandoffCancelledV1):
            out += await self._closed(envelope, partition, catalog)
        elif isinstance(payload, HandoffRejectedV1) and self._notify:
            known = (await self._book.partition(partition)).get(envelope.key)
            if known is not None:
                planned = Escalations(catalog, self._sla_url).rejection(envelope, payload, known)
                out += self._notices.outputs(planned, envelope)
        elif isinstance(payload, HandoffReprioritizedV1):
            book = await self._book.partition(partition)
            before = book.get(envelope.key)
            if before is not None and before.priority is not payload.priority:
                book[envelope.key] = after = replace(before, priority=payload.priority)
                out.append(self._store.row(envelope.key, after, partition))
        return out

    async def _closed(self, envelope: Envelope, partition: int, catalog: Catalog) -> list[Output]:
        """A completed or cancelled handoff: forgotten; a completion opens the chain's next."""
        facts = (await self._book.partition(partition)).pop(envelope.key, None)
        completed = isinstance(envelope.payload, HandoffCompletedV1)
        if facts is None:
            if completed:
                self._chains.inc(ChainEnd.UNKNOWN.value)
            return []
        out: list[Output] = [self._store.row(envelope.key, None, partition)]
        cancel = None
        if self._notify:
            cancel = Escalations(catalog, self._sla_url).closed(
                envelope, facts, envelope.event_type
            )
        if cancel is not None:
            out += self._notices.outputs(Planned(cancel=cancel), envelope)
        if not completed:
            return out
        following = next_handoff(
            envelope.key, facts, catalog.routes.get(facts.route_id), self._max_depth
        )
        if not isinstance(following, NextHandoff):
            if following is ChainEnd.DEPTH:
                log.warning(
                    "case %s: %s not opened after %s, the chain is %d deep "
                    "(ROUTING_MAX_CHAIN_DEPTH)",
                    facts.case_id,
                    facts.route_id,
                    envelope.key,
                    facts.depth,
                )
            self._chains.inc(following.value)
            return out
        self._chains.inc("opened")
        opened = make_envelope(
            following.payload,
            key=following.handoff_id,
            producer=PRODUCER,
            # The next team's clock starts when the previous team finished.
            occurred_at=envelope.occurred_at,
            recorded_at=self._clock.now(),
            event_id=following.event_id,
            correlation_id=facts.case_id,
            causation_id=envelope.event_id,
            chain=following.chain,
        )
        # Laid out as intake lays out a posted one: no nulls in `data`.
        opened = opened.model_copy(
            update={"data": {k: v for k, v in opened.data.items() if v is not None}}
        )
        # To the raw topic, like a posted handoff: the member owning its partition routes it
        # and remembers it (its own route, standard and calendar).
        out.append(Outbound(self._topics.raw, opened))
        return out


class NotifyDecisions:
    """The decisions consumer's handler: what each SLA decision calls for in the outbox."""

    def __init__(self, state: MapState, notices: Notices, sla_url: str) -> None:
        self._state = state
        self._notices = notices
        self._sla_url = sla_url

    async def __call__(self, envelope: Envelope) -> Sequence[Output]:
        """The outbox records of one decision (none for most)."""
        catalog = self._state.catalog
        if catalog is None:
            raise RuntimeError("no process map in force yet")
        planned = Escalations(catalog, self._sla_url).decision(envelope)
        return self._notices.outputs(planned, envelope)


class WebhookSender(Protocol):
    """Outbound HTTP (adapters.webhooks.WebhookClient)."""

    async def post(
        self, url: str, body: bytes, secret: bytes, headers: Mapping[str, str]
    ) -> WebhookAttempt:
        """POST a signed body."""
        ...


class WebhookAttempt(Protocol):
    """How one POST went."""

    @property
    def delivered(self) -> bool: ...

    @property
    def retryable(self) -> bool: ...

    @property
    def status(self) -> int | None: ...

    @property
    def error(self) -> str: ...


class RecordWriter(Protocol):
    """The producer, as the deliverer uses it."""

    async def publish_many(self, messages: Sequence[Output]) -> None:
        """Publish and wait for the acknowledgements."""
        ...

    async def write(
        self,
        records: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]], int | None]],
    ) -> None:
        """Write encoded records and wait for the acknowledgements."""
        ...


@dataclass(frozen=True)
class OutboxTopics:
    """The outbox and its dead-letter topic."""

    outbox: str
    dead: str


def body_bytes(request: NotificationRequestedV1) -> bytes:
    """The exact bytes posted (and signed): the body's JSON, keys sorted, so every attempt
    sends the same bytes."""
    return orjson.dumps(request.body, option=orjson.OPT_SORT_KEYS)


class DeliverNotifications:
    """The outbox owner: keeps the state of its outbox partitions and posts what is due.

    At-least-once: a notification is posted until a receiver answers 2xx, then its `delivered`
    marker is written (acks=all) and it is never posted again -- not after a restart, not by
    another member. A crash between the 2xx and the marker posts it once more, with the same
    body, signature and Idempotency-Key, so the receiver can drop the repeat. Failures are
    retried with exponential backoff (the attempt count and next attempt are written too, so a
    restart keeps them); a refusal (4xx) or the last failed attempt dead-letters it.
    """

    def __init__(
        self,
        *,
        sender: WebhookSender,
        writer: RecordWriter,
        topics: OutboxTopics,
        secrets: Mapping[str, bytes],
        policy: RetryPolicy,
        clock: Clock,
        counters: NotificationCounters,
        concurrency: int,
    ) -> None:
        self.outbox = Outbox()
        self._sender = sender
        self._writer = writer
        self._topics = topics
        self._secrets = secrets
        self._policy = policy
        self._clock = clock
        self._counters = counters
        self._slots = asyncio.Semaphore(concurrency)
        self._per_receiver = max(1, concurrency // 4)
        self._receivers: dict[str, asyncio.Semaphore] = {}
        self._changed = asyncio.Event()
        self._flights: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the outbox topic

    def assigned(self, partition: int) -> None:
        """An outbox partition is ours: rebuilt from its first record."""
        self.outbox.assign(partition)

    def record(self, partition: int, key: bytes, value: bytes | None) -> None:
        """One outbox record, in order."""
        if value is None:
            return
        try:
            envelope = Envelope.from_bytes(value)
        except ValueError as exc:
            log.warning(
                "outbox partition %d: unreadable record %r skipped: %s", partition, key, exc
            )
            return
        self.apply(partition, envelope)

    def apply(self, partition: int, envelope: Envelope) -> None:
        """Apply one outbox record to the state."""
        payload, outbox = envelope.payload, self.outbox
        if isinstance(payload, NotificationRequestedV1):
            outbox.requested(partition, payload)
        elif isinstance(payload, NotificationRetriedV1):
            outbox.retried(partition, payload)
        elif isinstance(payload, NotificationDeliveredV1 | NotificationDeadLetteredV1):
            outbox.finished(partition, payload)
        elif isinstance(payload, NotificationsCancelledV1):
            outbox.cancelled(partition, payload)
        self._changed.set()

    def caught_up(self, partition: int) -> None:
        """The partition is restored: what it holds pending may go."""
        self.outbox.open(partition)
        self._changed.set()

    async def revoked(self, partitions: list[int]) -> None:
        """Finish the posts in flight for those partitions (their markers written), then
        forget them: the next owner will not post them again."""
        flights = [task for p, task in self._flights.values() if p in partitions]
        if flights:
            await asyncio.wait(flights, timeout=30)
        for partition in partitions:
            self.outbox.drop(partition)

    # ------------------------------------------------------------------ scheduling

    async def start(self) -> None:
        """Post what is due, in the background, until stopped."""
        self._task = asyncio.create_task(self._run(), name="routing-notifications")

    async def stop(self) -> None:
        """Stop scheduling; posts in flight get a few seconds to land."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        flights = [task for _, task in self._flights.values()]
        if flights:
            _, late = await asyncio.wait(flights, timeout=5)
            for task in late:
                task.cancel()  # posted again after the restart: at-least-once

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            for item in self.outbox.take_due(self._clock.now()):
                task = asyncio.create_task(self._deliver(item), name="routing-webhook")
                self._flights[item.request.notification_id] = (item.partition, task)
            due = self.outbox.next_due()
            waits: list[asyncio.Future[object]] = [asyncio.ensure_future(self._changed.wait())]
            if due is not None:
                waits.append(asyncio.ensure_future(self._clock.sleep_until(due)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()

    async def _deliver(self, item: Pending) -> None:
        request = item.request
        nid = request.notification_id
        receiver = _origin(request.webhook)
        turn = self._receivers.get(receiver)
        if turn is None:
            turn = self._receivers[receiver] = asyncio.Semaphore(self._per_receiver)
        try:
            # A receiver's own turn first, then a shared slot: a dead or slow receiver holds
            # at most a quarter of the slots (each post ends at its timeout), never all.
            async with turn, self._slots:
                await self._attempt(item)
        except Exception:
            log.exception("notification %s: attempt failed unexpectedly", nid)
            due = self._clock.now() + self._policy.first
            self.outbox.reschedule(item, item.attempts, due, "unexpected error (logged)")
        finally:
            self._flights.pop(nid, None)
            self.outbox.landed(nid)
            self._changed.set()

    async def _attempt(self, item: Pending) -> None:
        request = item.request
        secret = self._secrets.get(request.secret) or self._secrets.get("*")
        if secret is None:
            await self._dead(
                item,
                "no-secret",
                f"no secret {request.secret!r} (nor '*') in ROUTING_WEBHOOK_SECRETS",
                item.attempts,
            )
            return
        attempts = item.attempts + 1
        result = await self._sender.post(
            request.webhook,
            body_bytes(request),
            secret,
            {
                "Idempotency-Key": request.notification_id,
                "X-Baton-Event": request.reason.value,
                "X-Baton-Attempt": str(attempts),
            },
        )
        now = self._clock.now()
        if result.delivered:
            marker = NotificationDeliveredV1(
                notification_id=request.notification_id,
                attempts=attempts,
                status=result.status or 200,
                delivered_at=now,
            )
            await self._mark(item, marker, "done")
            self.outbox.finished(item.partition, marker)
            self._counters.delivered.labels(request.reason.value).inc()
            return
        self._counters.failed.labels(str(result.retryable).lower()).inc()
        if not result.retryable or attempts >= self._policy.attempts:
            code = "refused" if not result.retryable else "retries-exhausted"
            await self._dead(item, code, result.error, attempts)
            return
        due = now + self._policy.delay(attempts)
        log.info(
            "notification %s to %s: attempt %d failed (%s); next at %s",
            request.notification_id,
            request.webhook,
            attempts,
            result.error,
            due.isoformat(),
        )
        retry = NotificationRetriedV1(
            notification_id=request.notification_id,
            attempts=attempts,
            next_attempt_at=due,
            error=result.error[:1000],
        )
        await self._mark(item, retry, "retry")
        self.outbox.reschedule(item, attempts, due, result.error)

    async def _dead(self, item: Pending, code: str, error: str, attempts: int) -> None:
        request = item.request
        log.error(
            "notification %s to %s dead-lettered (%s): %s",
            request.notification_id,
            request.webhook,
            code,
            error,
        )
        original = make_envelope(
            request,
            key=request.notification_id,
            producer=PRODUCER,
            occurred_at=request.decided_at,
            recorded_at=self._clock.now(),
            event_id=request.notification_id,
        )
        headers = [
            ("dlq.code", code.encode()),
            ("dlq.reason", error[:1000].encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.topic", self._topics.outbox.encode()),
            ("dlq.failed_at", self._clock.now().isoformat().encode()),
        ]
        record = (self._topics.dead, original.to_bytes(), request.notification_id.encode(), headers)
        await retrying(
            lambda: self._writer.write([(*record, None)]),
            on=(KafkaUnavailable,),
            what="dead-lettering a notification",
        )
        dead = NotificationDeadLetteredV1(
            notification_id=request.notification_id,
            attempts=attempts,
            code=code,
            error=error[:1000],
            dead_at=self._clock.now(),
        )
        await self._mark(item, dead, "done")
        self.outbox.finished(item.partition, dead)
        self._counters.dead.labels(code).inc()

    async def _mark(self, item: Pending, payload: Frozen, suffix: str) -> None:
        """Write a marker of the notification to its partition and wait for the ack."""
        nid = item.request.notification_id
        envelope = make_envelope(
            payload,
            key=f"{nid}/{suffix}",
            producer=PRODUCER,
            occurred_at=self._clock.now(),
            recorded_at=self._clock.now(),
            event_id=derived_id("notification", nid, suffix, str(item.attempts + 1)),
        )
        message = Outbound(self._topics.outbox, envelope, partition=item.partition)
        await retrying(
            lambda: self._writer.publish_many([message]),
            on=(KafkaUnavailable,),
            what="writing a notification marker",
        )


def _origin(url: str) -> str:
    """scheme://host:port of a webhook: posts to one receiver share its turns."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class PendingCollector(Collector):
    """`handoff_notifications_pending`: notifications waiting in the owned outbox partitions
    (for service hours, a retry, or their turn), read at scrape time."""

    def __init__(self, deliveries: DeliverNotifications) -> None:
        self._deliveries = deliveries

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "handoff_notifications_pending",
            "Notifications waiting in the outbox partitions this instance owns.",
            labels=["reason"],
        )
        counts = dict.fromkeys((r.value for r in NotificationReason), 0)
        for item in self._deliveries.outbox.pending():
            counts[item.request.reason.value] += 1
        for reason, count in counts.items():
            family.add_metric([reason], count)
        yield family
