"""Escalation notifications on the real broker, to a real HTTP receiver started here (uvicorn on
127.0.0.1): a breach is posted signed, once; a warning waits for the team's service hours while
a breach goes out at once; a rejection reaches the supplier; a failing receiver is retried and
then dead-lettered; and a routing killed between enqueue and delivery delivers after its
restart -- exactly one acknowledged post, never a second after the next restart."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from builders import ADMIN_KEYS, AUTH
from routing.main import create_app
from routing.settings import Settings
from shared.clock import Clock, FakeClock
from shared.contracts import Frozen
from shared.events import (
    Envelope,
    HandoffRejectedV1,
    HandoffSubmittedV1,
    SlaMissedV1,
    SlaWarningV1,
    derived_id,
    make_envelope,
)
from shared.kafka import Publisher
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import ServiceProcess, free_port, read_until, service_env, wait_for

SECRETS = {"ops": "ops-s3cret", "*": "fallback-s3cret"}

MAP = """
calendars:
  24x7: {timezone: UTC, always_open: true}
  office:
    timezone: Europe/Brussels
    hours: {mon-fri: "08:30-17:30"}
    holidays: {country: BE}
processes:
  desk:
    name: Service desk
    calendar: 24x7
    owner: {name: Desk lead, webhook: "RECEIVER/desk"}
  ops:
    name: Operations
    calendar: 24x7
    owner: {name: Ops lead, email: ops-lead@example.com}
    escalation: [{name: Ops on-call}]
    notify: {webhook: "RECEIVER/ops"}
  office:
    name: Office team
    calendar: office
    owner: {name: Office lead}
    notify: {webhook: "RECEIVER/office"}
x-std: &std {targets: {P1: {response: 1m, resolution: 5m}}}
routes:
  - {id: work, from: desk, kind: work, to: ops, standard: *std}
  - {id: paper, from: desk, kind: paper, to: office, standard: *std}
"""


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


class Receiver:
    """A webhook receiver on 127.0.0.1, served by uvicorn in this test's event loop: records
    every POST and answers `status` (settable while it runs)."""

    def __init__(self, status: int = 200, hold: bool = False) -> None:
        self.status = status
        self.posts: list[Post] = []
        self.held = 0  # posts waiting for `release` (a receiver that accepts and never answers)
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            status = self.status
            self.posts.append(Post(scope["path"], headers, body, status))
            self.held += 1
            await self.release.wait()
            self.held -= 1
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self.server.serve())
        await wait_for(lambda: self.server.started, within=10, what="the receiver listening")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    def delivered(self) -> list[Post]:
        """Posts the receiver acknowledged (2xx)."""
        return [p for p in self.posts if 200 <= p.answered < 300]


def map_file(tmp_path: Path, receiver: Receiver) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(MAP.replace("RECEIVER", receiver.url))
    return path


@asynccontextmanager
async def routing(
    kafka: KafkaSettings, process_map: Path, clock: Clock | None = None, **settings: Any
) -> AsyncIterator[FastAPI]:
    app = create_app(
        Settings(
            kafka=kafka,
            api_keys=ADMIN_KEYS,
            process_map=process_map,
            webhook_secrets=SECRETS,
            sla_url="http://sla.test",
            **settings,
        ),
        clock,
    )
    async with app.router.lifespan_context(app):
        await wait_for(
            lambda: all(app.state.routing.checks().values()), within=60, what="routing ready"
        )
        yield app


@asynccontextmanager
async def producer(kafka: KafkaSettings) -> AsyncIterator[Publisher]:
    publisher = Publisher(kafka, client_id="test-sla")
    await publisher.start(wait=True)
    try:
        yield publisher
    finally:
        await publisher.stop()


def decision(
    model: type[Frozen],
    handoff_id: str,
    at: datetime,
    *,
    route: str = "work",
    to: str = "ops",
    clock: str = "response",
    deadline: datetime | None = None,
    **extra: Any,
) -> Envelope:
    """An SLA decision as sla publishes it."""
    payload = model.model_validate(
        {
            "case_id": f"case-{handoff_id}",
            "kind": route,
            "from": "desk",
            "to": to,
            "priority": "P1",
            "cycle": 1,
            "route_id": route,
            "standard_version": 1,
            "clock": clock,
            "target_seconds": 60.0,
            "deadline": deadline or at,
            "decided_at": at,
            **extra,
        }
    )
    return make_envelope(
        payload,
        key=handoff_id,
        producer="sla",
        occurred_at=at,
        recorded_at=at,
        event_id=derived_id("sla", handoff_id, model.__name__, clock),
        correlation_id=f"case-{handoff_id}",
    )


def signed(post: Post, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), post.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(post.headers.get("x-baton-signature", ""), expected)


async def test_a_breach_reaches_the_receiver_signed_once_and_is_marked_delivered(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    decisions = kafka.topics.name(Stream.DECISIONS)
    outbox = kafka.topics.name(Stream.NOTIFICATIONS)
    now = datetime.now(UTC)
    # Decided late (sla was down): the step an hour after the deadline is due at once too.
    late = now - timedelta(hours=2)
    missed = decision(SlaMissedV1, "inc-1", now, deadline=late)
    async with Receiver() as receiver:
        path = map_file(tmp_path, receiver)
        async with routing(kafka, path), producer(kafka) as sla:
            await sla.publish(decisions, missed)
            await wait_for(lambda: len(receiver.posts) == 2, what="breach and escalation posts")
            await read_until(kafka, outbox, delivered_markers(2))
        # Another instance, the same decision again (a redelivery to a fresh consumer): the
        # outbox has its sent markers, so nothing is posted again. A later decision of the
        # same handoff (same outbox partition, so applied after it) proves it was read.
        async with routing(kafka, path), producer(kafka) as sla:
            await sla.publish(decisions, missed)
            resolution = decision(SlaMissedV1, "inc-1", now, clock="resolution", deadline=late)
            await sla.publish(decisions, resolution)
            await wait_for(lambda: len(receiver.posts) == 4, what="the resolution breach")

    by_clock = {(p.json["clock"], p.json["reason"]) for p in receiver.posts}
    assert by_clock == {
        ("response", "breach"),
        ("response", "escalation"),
        ("resolution", "breach"),
        ("resolution", "escalation"),
    }
    breach = next(p for p in receiver.posts if p.json["reason"] == "breach")
    assert breach.path == "/ops"
    assert signed(breach, SECRETS["ops"]) and not signed(breach, SECRETS["*"])
    assert breach.headers["idempotency-key"] == breach.json["notification_id"]
    assert breach.headers["x-baton-event"] == "breach"
    assert breach.headers["content-type"] == "application/json"
    body = breach.json
    assert (body["handoff_id"], body["case_id"], body["from"], body["to"]) == (
        "inc-1",
        "case-inc-1",
        "desk",
        "ops",
    )
    assert (body["team"], body["role"], body["recipient"]) == (
        "ops",
        "escalation-1",
        {"name": "Ops on-call"},
    )
    assert body["deadline"] == missed.data["deadline"]
    assert body["status_url"] == "http://sla.test/v1/handoffs/inc-1"
    assert body["decision_id"] == missed.event_id


def delivered_markers(count: int) -> Any:
    return lambda es: sum(e.event_type == "notification.delivered" for e in es) >= count


async def test_a_warning_waits_for_the_teams_hours_and_a_breach_goes_out_at_once(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    saturday = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 04:00 in Brussels: the office is shut
    monday = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # 08:30 in Brussels
    clock = FakeClock(saturday)
    decisions = kafka.topics.name(Stream.DECISIONS)
    async with Receiver() as receiver:
        path = map_file(tmp_path, receiver)
        async with routing(kafka, path, clock) as app, producer(kafka) as sla:
            await sla.publish(
                decisions,
                decision(SlaWarningV1, "p-1", saturday, route="paper", to="office", threshold=75),
            )
            await sla.publish(
                decisions,
                decision(
                    SlaMissedV1, "p-1", saturday, route="paper", to="office", clock="resolution"
                ),
            )
            await wait_for(lambda: len(receiver.posts) == 1, what="the breach, at once")
            pending = await notifications(app)
            assert [(p["reason"], p["due"]) for p in pending] == [
                # An hour of the office's business time after a deadline at night.
                ("escalation", "2026-11-23T08:30:00Z"),
                ("warning", "2026-11-23T07:30:00Z"),  # when the office opens
            ]
            assert receiver.posts[0].json["reason"] == "breach"
            clock.set(monday)
            await wait_for(lambda: len(receiver.posts) == 2, what="the warning in service hours")
            assert receiver.posts[1].json["reason"] == "warning"
            clock.set(monday + timedelta(hours=1))
            await wait_for(lambda: len(receiver.posts) == 3, what="the escalation")
    assert receiver.posts[2].json["reason"] == "escalation"
    assert all(signed(p, SECRETS["*"]) for p in receiver.posts)  # office has no own secret


async def outbox_view(app: FastAPI) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r", headers=AUTH) as c:
        answer = await c.get("/v1/notifications")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def notifications(app: FastAPI) -> list[dict[str, Any]]:
    """The pending notifications, by reason."""
    pending = (await outbox_view(app))["pending"]
    return [
        {**p, "due": p["due"].replace("+00:00", "Z")}
        for p in sorted(pending, key=lambda p: p["reason"])
    ]


def submitted(handoff_id: str, at: datetime) -> Envelope:
    return make_envelope(
        HandoffSubmittedV1.model_validate(
            {"case_id": f"c-{handoff_id}", "kind": "work", "from": "desk", "priority": "P1"}
        ),
        key=handoff_id,
        producer="intake",
        occurred_at=at,
        recorded_at=at,
    )


async def test_a_rejection_tells_the_supplier(kafka: KafkaSettings, tmp_path: Path) -> None:
    raw = kafka.topics.name(Stream.RAW)
    now = datetime.now(UTC)
    opening = submitted("w-9", now)
    rejection = make_envelope(
        HandoffRejectedV1(reason="the caller's number is missing", actor="ops-agent"),
        key="w-9",
        producer="intake",
        occurred_at=now,
        recorded_at=now,
    )
    async with (
        Receiver() as receiver,
        routing(kafka, map_file(tmp_path, receiver)),
        producer(kafka) as upstream,
    ):
        await upstream.publish(raw, opening)
        await upstream.publish(raw, rejection)
        await wait_for(lambda: receiver.posts, what="the rejection notice")
    (post,) = receiver.posts
    assert post.path == "/desk"
    assert (post.json["reason"], post.json["team"], post.json["recipient"]) == (
        "rejection",
        "desk",
        {"name": "Desk lead"},
    )
    assert post.json["rejection_reason"] == "the caller's number is missing"
    assert signed(post, SECRETS["*"])


async def test_a_receiver_that_never_answers_does_not_hold_up_routing(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    decisions, raw = kafka.topics.name(Stream.DECISIONS), kafka.topics.name(Stream.RAW)
    routed = kafka.topics.name(Stream.ROUTED)
    now = datetime.now(UTC)
    async with Receiver(hold=True) as receiver:
        path = map_file(tmp_path, receiver)
        async with (
            routing(kafka, path, webhook_timeout_s=120) as app,
            producer(kafka) as upstream,
        ):
            await upstream.publish(decisions, decision(SlaMissedV1, "inc-4", now))
            await wait_for(lambda: receiver.held, what="a post the receiver holds")
            # Routing goes on while the post hangs: the next handoff is routed, the outbox
            # shows the hanging post in flight.
            await upstream.publish(raw, submitted("w-4", now))
            await read_until(kafka, routed, lambda es: any(e.key == "w-4" for e in es))
            assert receiver.held == 1  # still unanswered
            (flying,) = [p for p in await notifications(app) if p["in_flight"]]
            assert (flying["reason"], flying["state"]) == ("breach", "in-flight")
            receiver.release.set()

            async def delivered() -> list[dict[str, Any]]:
                body = await outbox_view(app)
                return [f for f in body["finished"] if f["state"] == "delivered"]

            (done,) = await wait_for(delivered, what="the post answered at last")
            assert (done["reason"], done["attempts"], done["status"]) == ("breach", 1, 200)


async def test_a_failing_receiver_is_retried_then_dead_lettered_and_counted(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    decisions = kafka.topics.name(Stream.DECISIONS)
    dead_topic = kafka.topics.dlq(Stream.NOTIFICATIONS)
    async with Receiver(status=503) as receiver:
        path = map_file(tmp_path, receiver)
        async with (
            routing(kafka, path, webhook_attempts=3, webhook_backoff_s=0.05) as app,
            producer(kafka) as sla,
        ):
            missed = decision(SlaMissedV1, "inc-2", datetime.now(UTC))
            await sla.publish(decisions, missed)
            dead = await read_until(kafka, dead_topic, lambda es: len(es) >= 1)

            async def dead_lettered() -> list[dict[str, Any]]:
                body = await outbox_view(app)
                return [f for f in body["finished"] if f["state"] == "dead-lettered"]

            # The outcome is on GET /v1/notifications: three attempts, the last failure.
            (gone,) = await wait_for(dead_lettered, what="the dead letter listed")
            assert (gone["reason"], gone["attempts"], gone["code"]) == (
                "breach",
                3,
                "retries-exhausted",
            )
            assert gone["error"].startswith("HTTP 503")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as c:

                async def counted() -> bool:
                    text = (await c.get("/metrics")).text
                    return (
                        'handoff_notifications_dead_lettered_total{code="retries-exhausted"} 1.0'
                        in text
                    )

                # Counted once the dead marker is written, just after the dead letter.
                await wait_for(counted, what="the dead letter counted")
    assert dead[0].event_type == "notification.requested"
    assert dead[0].payload.reason.value == "breach"  # type: ignore[attr-defined]
    breach_posts = [p for p in receiver.posts if p.json["reason"] == "breach"]
    assert [p.headers["x-baton-attempt"] for p in breach_posts] == ["1", "2", "3"]


async def test_a_routing_killed_between_enqueue_and_delivery_delivers_once_after_restart(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    decisions = kafka.topics.name(Stream.DECISIONS)
    async with Receiver(status=503) as receiver:
        env = {
            **service_env("ROUTING_", kafka),
            "ROUTING_PROCESS_MAP": str(map_file(tmp_path, receiver)),
            "ROUTING_WEBHOOK_SECRETS": json.dumps(SECRETS),
            "ROUTING_WEBHOOK_BACKOFF_S": "0.2",
            "ROUTING_WEBHOOK_BACKOFF_MAX_S": "0.5",
        }
        first = ServiceProcess("routing.main", env, "notify-restart-1")
        first.start()
        try:
            await first.ready()
            async with producer(kafka) as sla:
                missed = decision(SlaMissedV1, "inc-3", datetime.now(UTC))
                await sla.publish(decisions, missed)
            # Enqueued, and tried: the receiver is down (503), the retry is on record.
            await wait_for(lambda: len(receiver.posts) >= 2, what="failed attempts")
        finally:
            first.kill()  # SIGKILL: nothing is flushed
        receiver.status = 200
        second = ServiceProcess("routing.main", env, "notify-restart-2")
        second.start()
        try:
            await second.ready()
            await wait_for(lambda: len(receiver.delivered()) == 1, what="delivery after restart")
        finally:
            second.stop()
        third = ServiceProcess("routing.main", env, "notify-restart-3")
        third.start()
        try:
            await third.ready()  # ready: every outbox partition it owns is restored
            await wait_for(lambda: nothing_pending(third), what="an empty outbox")
        finally:
            third.stop()

    (ok,) = receiver.delivered()
    assert ok.json["reason"] == "breach"
    attempts = [
        p for p in receiver.posts if p.json["notification_id"] == ok.json["notification_id"]
    ]
    # The count survived the kill (the last attempt before it may not have been recorded).
    assert 2 <= int(ok.headers["x-baton-attempt"]) <= len(attempts)
    assert {p.headers["idempotency-key"] for p in attempts} == {ok.json["notification_id"]}
    assert len({p.body for p in attempts}) == 1
    # The escalation step (an hour after the deadline) is still waiting: the third instance
    # holds it pending, it was never posted.
    assert all(p.json["reason"] == "breach" for p in receiver.posts)


async def nothing_pending(proc: ServiceProcess) -> bool:
    async with httpx.AsyncClient(base_url=proc.url, headers=AUTH, timeout=5) as client:
        body = (await client.get("/v1/notifications")).json()
    owned = body["partitions"]
    due_now = [p for p in body["pending"] if p["reason"] != "escalation" or p["attempts"] > 0]
    return bool(owned) and all(owned.values()) and not due_now
