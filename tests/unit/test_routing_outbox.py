"""The notification outbox and its deliverer: what is pending and due, what a marker, a retry or
a cancellation changes, and how posts are signed, retried, dead-lettered (fake sender, fake
clock; the real broker and a real receiver are in tests/integration/test_routing_notify.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry

from routing.adapters.webhooks import Attempt
from routing.domain.outbox import Outbox, RetryPolicy
from routing.handlers import DeliverNotifications, NotificationCounters, OutboxTopics
from shared.clock import FakeClock
from shared.contracts import ClockName
from shared.events import (
    Envelope,
    NotificationDeadLetteredV1,
    NotificationDeliveredV1,
    NotificationReason,
    NotificationRequestedV1,
    NotificationRetriedV1,
    NotificationsCancelledV1,
    make_envelope,
)
from shared.kafka import Outbound, Output
from support import wait_for

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def request(
    nid: str = "n-1",
    *,
    handoff_id: str = "po-1",
    due: datetime = T0,
    decided: datetime = T0,
    reason: NotificationReason = NotificationReason.WARNING,
    clock: ClockName | None = ClockName.RESPONSE,
    secret: str = "warehouse",
) -> NotificationRequestedV1:
    return NotificationRequestedV1(
        notification_id=nid,
        handoff_id=handoff_id,
        reason=reason,
        clock=clock,
        cycle=1 if clock else None,
        team="warehouse",
        level=0,
        recipient="Lead",
        webhook="http://hooks.test/warehouse",
        secret=secret,
        urgent=False,
        not_before=due,
        decided_at=decided,
        body={"notification_id": nid, "handoff_id": handoff_id, "reason": reason.value},
    )


def cancel(until: datetime, clock: ClockName | None = None) -> NotificationsCancelledV1:
    return NotificationsCancelledV1(handoff_id="po-1", clock=clock, until=until, reason="t")


def test_a_request_is_due_at_its_not_before_once_its_partition_is_restored() -> None:
    outbox = Outbox()
    outbox.assign(0)
    outbox.requested(0, request(due=T0 + timedelta(hours=1)))
    assert outbox.next_due() is None  # restoring: a sent marker may still be on its way
    outbox.open(0)
    assert outbox.next_due() == T0 + timedelta(hours=1)
    assert outbox.take_due(T0) == []
    (item,) = outbox.take_due(T0 + timedelta(hours=1))
    assert item.request.notification_id == "n-1"
    assert outbox.take_due(T0 + timedelta(hours=2)) == []  # in flight: not taken twice


def test_a_delivered_marker_ends_a_notification_even_when_its_request_comes_again() -> None:
    outbox = Outbox()
    outbox.assign(0)
    outbox.requested(0, request())
    outbox.finished(0, delivered())
    assert not outbox.requested(0, request())  # a redelivered decision
    outbox.open(0)
    assert list(outbox.pending()) == []
    # The marker read again (a restore, a retried write) keeps one outcome.
    outbox.finished(0, delivered())
    (done,) = outbox.recent()
    assert (done.notification_id, done.delivered, done.status, done.handoff_id) == (
        "n-1",
        True,
        200,
        "po-1",
    )


def delivered(nid: str = "n-1") -> NotificationDeliveredV1:
    return NotificationDeliveredV1(notification_id=nid, attempts=1, status=200, delivered_at=T0)


def test_a_retry_record_moves_the_next_attempt_and_keeps_the_count() -> None:
    outbox = Outbox()
    outbox.assign(0)
    outbox.requested(0, request())
    retry_at = T0 + timedelta(minutes=5)
    outbox.retried(
        0,
        NotificationRetriedV1(
            notification_id="n-1", attempts=3, next_attempt_at=retry_at, error="HTTP 502"
        ),
    )
    outbox.open(0)
    (item,) = outbox.pending()
    assert (item.attempts, item.due, item.last_error) == (3, retry_at, "HTTP 502")
    assert outbox.take_due(T0) == []
    assert len(outbox.take_due(retry_at)) == 1


def test_a_cancellation_drops_clock_notifications_decided_before_it_but_not_rejections() -> None:
    outbox = Outbox()
    outbox.assign(0)
    outbox.open(0)
    outbox.requested(0, request("warned", decided=T0))
    outbox.requested(0, request("other-clock", clock=ClockName.RESOLUTION))
    outbox.requested(0, request("later", decided=T0 + timedelta(hours=2)))
    outbox.requested(0, request("returned", reason=NotificationReason.REJECTION, clock=None))
    dropped = outbox.cancelled(0, cancel(T0 + timedelta(hours=1), ClockName.RESPONSE))
    assert dropped == ["warned"]
    assert sorted(p.request.notification_id for p in outbox.pending()) == [
        "later",
        "other-clock",
        "returned",
    ]
    # A request arriving after the cancellation that covers it stays cancelled.
    assert not outbox.requested(0, request("warned-again", decided=T0))


def test_retry_delays_double_up_to_their_cap() -> None:
    policy = RetryPolicy(attempts=6, first=timedelta(seconds=5), cap=timedelta(seconds=30))
    assert [policy.delay(n).total_seconds() for n in range(1, 6)] == [5, 10, 20, 30, 30]


# --------------------------------------------------------------------------- the deliverer


@dataclass
class Post:
    url: str
    body: bytes
    secret: bytes
    headers: dict[str, str]


class Receiver:
    """Answers posts with the statuses it is given (200 once they run out)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.posts: list[Post] = []

    async def post(
        self, url: str, body: bytes, secret: bytes, headers: Mapping[str, str]
    ) -> Attempt:
        self.posts.append(Post(url, body, secret, dict(headers)))
        status = self.statuses.pop(0) if self.statuses else 200
        ok = 200 <= status < 300
        return Attempt(ok, status >= 500, status, "" if ok else f"HTTP {status}")


class Writer:
    """The producer: records what would be written."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.written: list[tuple[Any, ...]] = []

    async def publish_many(self, messages: Sequence[Output]) -> None:
        self.published.extend(m.envelope for m in messages if isinstance(m, Outbound))

    async def write(self, records: Sequence[tuple[Any, ...]]) -> None:
        self.written.extend(records)


def deliverer(
    receiver: Receiver, clock: FakeClock, attempts: int = 3
) -> tuple[DeliverNotifications, Writer, NotificationCounters]:
    writer = Writer()
    counters = NotificationCounters(CollectorRegistry())
    deliveries = DeliverNotifications(
        sender=receiver,
        writer=writer,  # type: ignore[arg-type]
        topics=OutboxTopics("t.routing.notifications.v1", "t.routing.notifications.v1.dlq"),
        secrets={"warehouse": b"s3cret"},
        policy=RetryPolicy(attempts=attempts, first=timedelta(seconds=5)),
        clock=clock,
        counters=counters,
        concurrency=2,
    )
    deliveries.assigned(0)
    deliveries.caught_up(0)
    return deliveries, writer, counters


def markers(writer: Writer) -> list[type]:
    return [type(e.payload) for e in writer.published]


async def test_a_due_notification_is_posted_signed_once_and_marked_delivered() -> None:
    clock, receiver = FakeClock(T0), Receiver()
    deliveries, writer, counters = deliverer(receiver, clock)
    await deliveries.start()
    try:
        deliveries.apply(0, writer_envelope(request()))
        await wait_for(lambda: markers(writer) == [NotificationDeliveredV1], within=5)
    finally:
        await deliveries.stop()
    (post,) = receiver.posts
    assert post.body == orjson.dumps(request().body, option=orjson.OPT_SORT_KEYS)
    assert post.secret == b"s3cret"  # the sender signs with the receiver's secret
    assert post.headers["Idempotency-Key"] == "n-1"
    assert post.headers["X-Baton-Event"] == "warning"
    (marker,) = writer.published
    assert marker.key == "n-1/done"
    assert counters.delivered.labels("warning")._value.get() == 1


async def test_a_notification_waits_for_its_not_before() -> None:
    clock, receiver = FakeClock(T0), Receiver()
    deliveries, _, _ = deliverer(receiver, clock)
    due = T0 + timedelta(hours=1)
    await deliveries.start()
    try:
        deliveries.apply(0, writer_envelope(request(due=due)))
        # The scheduler sleeps until then (one wake-up, no polling), having posted nothing.
        await wait_for(lambda: clock.wake_ups() == [due], within=5)
        assert receiver.posts == []
        clock.advance(timedelta(hours=1))
        await wait_for(lambda: len(receiver.posts) == 1, within=5)
    finally:
        await deliveries.stop()


async def test_a_failing_receiver_is_retried_with_backoff_then_gets_it() -> None:
    clock, receiver = FakeClock(T0), Receiver(503, 503)
    deliveries, writer, counters = deliverer(receiver, clock, attempts=5)
    await deliveries.start()
    try:
        deliveries.apply(0, writer_envelope(request()))
        await wait_for(lambda: markers(writer) == [NotificationRetriedV1], within=5)
        retry = writer.published[0].payload
        assert isinstance(retry, NotificationRetriedV1)
        assert (retry.attempts, retry.next_attempt_at) == (1, T0 + timedelta(seconds=5))
        clock.advance(timedelta(seconds=5))
        await wait_for(lambda: len(writer.published) == 2, within=5)
        clock.advance(timedelta(seconds=10))
        await wait_for(lambda: NotificationDeliveredV1 in markers(writer), within=5)
    finally:
        await deliveries.stop()
    assert [p.headers["X-Baton-Attempt"] for p in receiver.posts] == ["1", "2", "3"]
    assert {p.headers["Idempotency-Key"] for p in receiver.posts} == {"n-1"}
    assert len({p.body for p in receiver.posts}) == 1
    assert counters.failed.labels("true")._value.get() == 2


async def test_a_refusal_or_the_last_failure_dead_letters_and_counts() -> None:
    clock = FakeClock(T0)
    refused, retried = Receiver(400), Receiver(500, 500)
    for receiver, code in ((refused, "refused"), (retried, "retries-exhausted")):
        deliveries, writer, counters = deliverer(receiver, clock, attempts=2)
        await deliveries.start()
        try:
            deliveries.apply(0, writer_envelope(request()))
            if receiver is retried:
                await wait_for(lambda w=writer: len(w.published) == 1, within=5)
                clock.advance(timedelta(seconds=5))
            await wait_for(lambda w=writer: NotificationDeadLetteredV1 in markers(w), within=5)
        finally:
            await deliveries.stop()
        (dead,) = writer.written
        assert dead[0] == "t.routing.notifications.v1.dlq"
        assert dict(dead[3])["dlq.code"] == code.encode()
        assert Envelope.from_bytes(dead[1]).payload == request()
        assert counters.dead.labels(code)._value.get() == 1
        assert list(deliveries.outbox.pending()) == []


async def test_a_notification_without_a_secret_is_dead_lettered_unsent() -> None:
    clock, receiver = FakeClock(T0), Receiver()
    deliveries, writer, counters = deliverer(receiver, clock)
    await deliveries.start()
    try:
        deliveries.apply(0, writer_envelope(request(secret="nobody")))
        await wait_for(lambda: NotificationDeadLetteredV1 in markers(writer), within=5)
    finally:
        await deliveries.stop()
    assert receiver.posts == []
    assert counters.dead.labels("no-secret")._value.get() == 1


def writer_envelope(payload: NotificationRequestedV1) -> Envelope:
    return make_envelope(
        payload,
        key=payload.notification_id,
        producer="routing",
        occurred_at=payload.decided_at,
        recorded_at=payload.decided_at,
        event_id=payload.notification_id,
    )


class Hanging(Receiver):
    """One receiver never answers (a dead host that accepts the connection); the others do."""

    def __init__(self, dead: str) -> None:
        super().__init__()
        self.dead = dead
        self.hung = 0
        self.release = asyncio.Event()

    async def post(
        self, url: str, body: bytes, secret: bytes, headers: Mapping[str, str]
    ) -> Attempt:
        if url.startswith(self.dead):
            self.hung += 1
            await self.release.wait()
            return Attempt(False, True, None, "ReadTimeout: ")
        return await super().post(url, body, secret, headers)


async def test_a_dead_receiver_holds_only_its_own_turns_and_the_others_get_theirs() -> None:
    clock = FakeClock(T0)
    receiver = Hanging("http://dead.test")
    deliveries, writer, _ = deliverer(receiver, clock)  # 2 slots: one turn per receiver
    stuck = [
        request(f"stuck-{n}").model_copy(update={"webhook": "http://dead.test/h"}) for n in range(5)
    ]
    await deliveries.start()
    try:
        for item in [*stuck, request("alive")]:
            deliveries.apply(0, writer_envelope(item))
        await wait_for(lambda: NotificationDeliveredV1 in markers(writer), within=5)
        assert receiver.hung == 1  # the dead one's other posts wait for its turn, not a slot
        assert [p.headers["Idempotency-Key"] for p in receiver.posts] == ["alive"]
    finally:
        receiver.release.set()
        await deliveries.stop()


async def test_the_webhook_client_retries_5xx_timeouts_and_refused_connections_not_4xx() -> None:
    from routing.adapters.webhooks import WebhookClient

    def answer(request: httpx.Request) -> httpx.Response:
        kind = request.url.path.strip("/")
        if kind == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if kind == "refused":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(int(kind), text="nope")

    client = WebhookClient(1.0, transport=httpx.MockTransport(answer))
    outcomes = {}
    for kind in ("200", "503", "429", "timeout", "refused", "400", "404"):
        got = await client.post(f"http://hooks.test/{kind}", b"{}", b"k", {})
        outcomes[kind] = (got.delivered, got.retryable)
    await client.close()
    assert outcomes == {
        "200": (True, False),
        "503": (False, True),
        "429": (False, True),
        "timeout": (False, True),
        "refused": (False, True),
        "400": (False, False),
        "404": (False, False),
    }


def test_the_signature_is_the_hex_hmac_sha256_of_the_exact_body() -> None:
    from routing.adapters.webhooks import signature

    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
