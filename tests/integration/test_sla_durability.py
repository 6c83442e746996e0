"""sla survives SIGKILL and rebalances with nothing lost and no decision emitted twice.

Two sla deployments consume identical streams of routed events: a reference that is never
interrupted, and a subject that is SIGKILLed mid-stream (and again while its timers are
pending), or rebalanced between two instances. Afterwards their decision streams must hold
exactly the same decisions -- same deterministic ids, same types -- and the subject none twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx

from builders import AUTH, event, route
from shared.contracts import Priority
from shared.events import Envelope
from shared.kafka import Outbound, Publisher, ensure_topics
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import Broker, ServiceProcess, fresh_settings, read_all, service_env, wait_for

PATTERNS = [
    [("submitted", 0), ("accepted", 10), ("completed", 60)],
    [("submitted", 0), ("accepted", 120), ("completed", 300)],
    [("submitted", 0), ("paused", 5), ("resumed", 30), ("accepted", 50), ("completed", 180)],
    [("submitted", 0), ("rejected", 20), ("submitted", 60), ("accepted", 70), ("completed", 120)],
    [("submitted", 0), ("reprioritized", 5), ("accepted", 20), ("completed", 50)],
    [("submitted", 0), ("cancelled", 30)],
    [("submitted", 0), ("accepted", 3)],
]


def history(count: int, base: datetime) -> list[Envelope]:
    """`count` handoffs that all happened in the past, in event-time order."""
    events: list[tuple[datetime, int, Envelope]] = []
    for i in range(count):
        start = base + timedelta(seconds=20 * i)
        for seq, (kind, minute) in enumerate(PATTERNS[i % len(PATTERNS)]):
            at = start + timedelta(minutes=minute)
            env = event(kind, f"h{i}", at, seq=str(seq), priority=Priority.P1)
            events.append((at, seq, env))
    return [e for _, _, e in sorted(events, key=lambda x: (x[0], x[1]))]


def live(count: int, now: datetime) -> list[Envelope]:
    """Handoffs that start now with 3 s / 6 s targets: breaches come from the timers."""
    fast = route(response="3s", resolution="6s", warnings=(), route_id="desk-to-l2-fast")
    out: list[Envelope] = []
    for i in range(count):
        out.append(event("submitted", f"live{i}", now, via=fast))
        if i % 2:
            out.append(event("accepted", f"live{i}", now + timedelta(milliseconds=500)))
    return out


async def publish(kafka: KafkaSettings, events: list[Envelope]) -> None:
    publisher = Publisher(kafka, client_id="load")
    await publisher.start(wait=True)
    try:
        topic = kafka.topics.name(Stream.ROUTED)
        await publisher.publish_many([Outbound(topic, e) for e in events])
    finally:
        await publisher.stop()


async def decisions(kafka: KafkaSettings) -> list[Envelope]:
    records = await read_all(kafka, kafka.topics.name(Stream.DECISIONS))
    return [Envelope.from_bytes(r.value) for r in records]


async def settled(*deployments: KafkaSettings, quiet: float = 3.0, within: float = 120) -> None:
    """Wait until no deployment's decision stream grows for `quiet` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: list[int] = []
    stable_since = loop.time()
    while loop.time() < deadline:
        counts = [len(await decisions(k)) for k in deployments]
        if counts != last:
            last, stable_since = counts, loop.time()
        elif loop.time() - stable_since >= quiet:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"decision streams did not settle: {last}")


def sla(kafka: KafkaSettings, name: str) -> ServiceProcess:
    return ServiceProcess("sla.main", service_env("SLA_", kafka), name)


def summary(envelopes: list[Envelope]) -> Counter[tuple[str, str, str]]:
    return Counter((e.event_id, e.event_type, e.key) for e in envelopes)


async def assert_same_decisions(reference: KafkaSettings, subject: KafkaSettings) -> int:
    ref, sub = await decisions(reference), await decisions(subject)
    ids = [e.event_id for e in sub]
    assert len(ids) == len(set(ids)), "a decision was emitted twice"
    missing = summary(ref) - summary(sub)
    extra = summary(sub) - summary(ref)
    detail = {
        "missing": [
            (e.event_type, e.key, e.data)
            for e in ref
            if (e.event_id, e.event_type, e.key) in missing
        ],
        "extra": [
            (e.event_type, e.key, e.data) for e in sub if (e.event_id, e.event_type, e.key) in extra
        ],
    }
    assert not missing and not extra, detail
    return len(sub)


async def test_sigkill_mid_stream_and_during_timers_loses_nothing_and_duplicates_nothing(
    broker: Broker,
) -> None:
    reference, subject = fresh_settings(broker.bootstrap), fresh_settings(broker.bootstrap)
    for k in (reference, subject):
        await ensure_topics(k)
    ref, sub = sla(reference, "sla-reference"), sla(subject, "sla-subject")
    ref.start()
    sub.start()
    try:
        await asyncio.gather(ref.ready(), sub.ready())
        past = history(1400, datetime.now(UTC) - timedelta(hours=24))
        chunks = [past[i::4] for i in range(4)]
        chunks = [sorted(c, key=lambda e: e.occurred_at) for c in chunks]
        for k in (reference, subject):
            await publish(k, past[: len(past) // 2])
        await asyncio.sleep(0.3)
        sub.kill()  # mid-stream: transactions in flight, timers pending
        sub.start()
        for k in (reference, subject):
            await publish(k, past[len(past) // 2 :])
        await sub.ready()
        await settled(reference, subject)

        now = datetime.now(UTC)
        for k in (reference, subject):
            await publish(k, live(30, now))
        ids = {f"live{i}" for i in range(30)}

        async def opened_everywhere() -> bool:
            for k in (reference, subject):
                seen = {e.key for e in await decisions(k) if e.event_type == "sla.opened"}
                if not ids <= seen:
                    return False
            return True

        await wait_for(opened_everywhere, what="live handoffs opened")
        sub.kill()  # the live deadlines pass while the subject is down
        await asyncio.sleep(7)
        sub.start()
        await sub.ready()
        await settled(reference, subject)
        total = await assert_same_decisions(reference, subject)
        assert total > 3000
        missed = [e for e in await decisions(subject) if e.event_type == "sla.missed"]
        assert {e.key for e in missed} >= ids
        async with httpx.AsyncClient(base_url=sub.url, headers=AUTH) as client:
            body = (await client.get("/v1/handoffs/live1")).json()
        clocks = {c["clock"]: c["outcome"] for c in body["clocks"]}
        assert clocks == {"response": "met", "resolution": "missed"}
    finally:
        sub.stop()
        ref.stop()


async def test_rebalance_between_two_instances_loses_nothing_and_duplicates_nothing(
    broker: Broker,
) -> None:
    reference, subject = fresh_settings(broker.bootstrap), fresh_settings(broker.bootstrap)
    for k in (reference, subject):
        await ensure_topics(k)
    ref, first, second = sla(reference, "sla-ref2"), sla(subject, "sla-a"), sla(subject, "sla-b")
    ref.start()
    first.start()
    try:
        await asyncio.gather(ref.ready(), first.ready())
        past = history(900, datetime.now(UTC) - timedelta(hours=24))
        third = len(past) // 3
        for k in (reference, subject):
            await publish(k, past[:third])
        second.start()  # joins the group: partitions move, state is rebuilt from the changelog
        for k in (reference, subject):
            await publish(k, past[third : 2 * third])
        await second.ready()
        first.stop()  # leaves: its partitions move to the second instance
        for k in (reference, subject):
            await publish(k, past[2 * third :])
        await settled(reference, subject)
        assert await assert_same_decisions(reference, subject) > 1500
    finally:
        for p in (first, second, ref):
            p.stop()
