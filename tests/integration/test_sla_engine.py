"""The sla service against the real broker: decisions, status rows, changelog, the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from builders import ADMIN_KEYS, AUTH, event, minutes, route
from shared.clock import FakeClock
from shared.contracts import RouteV1
from shared.events import Envelope
from shared.kafka import Outbound, Publisher
from shared.settings import KafkaSettings
from shared.topics import Stream
from sla.adapters import changelog
from sla.domain.handoff import Handoff
from sla.main import create_app
from sla.settings import Settings
from support import read_all, read_until, wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def sla(kafka: KafkaSettings) -> AsyncIterator[tuple[FastAPI, FakeClock, httpx.AsyncClient]]:
    clock = FakeClock(T0)
    app = create_app(Settings(kafka=kafka, api_keys=ADMIN_KEYS), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sla", headers=AUTH
        ) as client:
            await wait_for(lambda: app.state.consumer.ready, what="sla joined its group")
            yield app, clock, client


async def publish(kafka: KafkaSettings, *events: Envelope) -> None:
    publisher = Publisher(kafka, client_id="test")
    await publisher.start(wait=True)
    try:
        topic = kafka.topics.name(Stream.ROUTED)
        await publisher.publish_many([Outbound(topic, e) for e in events])
    finally:
        await publisher.stop()


def types(envelopes: list[Envelope], handoff_id: str) -> list[str]:
    return [e.event_type for e in envelopes if e.key == handoff_id]


async def test_breach_is_committed_when_the_deadline_passes_and_the_api_shows_it(
    kafka: KafkaSettings, sla
) -> None:
    _, clock, client = sla
    await publish(kafka, event("submitted", "h1", T0))

    async def known() -> httpx.Response | None:
        r = await client.get("/v1/handoffs/h1")
        return r if r.status_code == 200 else None

    got = await wait_for(known, what="h1 known to sla")
    body = got.json()
    assert body["state"] == "open" and body["from"] == "service-desk"
    response = next(c for c in body["clocks"] if c["clock"] == "response")
    assert response["deadline"].startswith("2026-03-02T10:00:00")
    assert response["outcome"] is None

    decisions_topic = kafka.topics.name(Stream.DECISIONS)
    for minute, count in ((31, 1), (46, 2)):  # the 50 % and 75 % warnings, one at a time
        clock.set(minutes(T0, minute))
        await read_until(
            kafka, decisions_topic, lambda es, n=count: types(es, "h1").count("sla.warning") == n
        )
    clock.set(minutes(T0, 61))
    decisions = await read_until(kafka, decisions_topic, lambda es: "sla.missed" in types(es, "h1"))
    assert types(decisions, "h1") == ["sla.opened", "sla.warning", "sla.warning", "sla.missed"]
    missed = next(e for e in decisions if e.event_type == "sla.missed")
    assert missed.occurred_at == T0 + timedelta(hours=1)
    assert missed.payload.clock == "response"  # type: ignore[attr-defined]

    await publish(kafka, event("accepted", "h1", minutes(T0, 61)))
    decisions = await read_until(
        kafka, decisions_topic, lambda es: "sla.stopped" in types(es, "h1")
    )
    stopped = next(e for e in decisions if e.event_type == "sla.stopped")
    assert stopped.payload.late is True  # type: ignore[attr-defined]

    async def stopped_row() -> dict | None:  # the row is readable once the table has it
        body = (await client.get("/v1/handoffs/h1")).json()
        return body if len(body["history"]) == 2 else None

    body = await wait_for(stopped_row, what="the row with the response")
    response = next(c for c in body["clocks"] if c["clock"] == "response")
    assert response["outcome"] == "missed" and response["stage"] == "stopped"
    assert body["breached"] is True
    assert [h["type"] for h in body["history"]] == ["submitted", "accepted"]

    overdue = (await client.get("/v1/handoffs", params={"view": "overdue"})).json()
    assert overdue["count"] == 0  # the response clock stopped; resolution is not due yet
    clock.advance(timedelta(hours=4))
    await read_until(kafka, decisions_topic, lambda es: types(es, "h1").count("sla.missed") == 2)
    overdue = (await client.get("/v1/handoffs", params={"view": "overdue"})).json()
    assert [i["handoff_id"] for i in overdue["items"]] == ["h1"]  # on any instance, any time
    assert overdue["items"][0]["clock"] == "resolution"

    status = await read_all(kafka, kafka.topics.name(Stream.STATUS))
    assert status[-1].key == b"h1" and b'"state":"open"' in status[-1].value
    changelog = await read_all(kafka, kafka.topics.name(Stream.SLA_STATE))
    assert {r.key.split(b"~")[0] for r in changelog} == {b"h1", b"#std:desk-to-l2@1", b"#stream"}


async def test_late_milestone_retracts_the_breach_on_kafka(kafka: KafkaSettings, sla) -> None:
    _, clock, _ = sla
    topic = kafka.topics.name(Stream.DECISIONS)
    await publish(kafka, event("submitted", "h2", T0, via=route(warnings=())))
    await read_until(kafka, topic, lambda es: "sla.opened" in types(es, "h2"))  # known live
    clock.advance(timedelta(minutes=70))
    await read_until(kafka, topic, lambda es: "sla.missed" in types(es, "h2"))
    await publish(kafka, event("accepted", "h2", minutes(T0, 30)))
    decisions = await read_until(kafka, topic, lambda es: "sla.met" in types(es, "h2"))
    assert types(decisions, "h2") == [
        "sla.opened",
        "sla.missed",
        "sla.retracted",
        "sla.met",
        "sla.stopped",
    ]
    retracted = next(e for e in decisions if e.event_type == "sla.retracted")
    assert retracted.payload.retracted == "missed"  # type: ignore[attr-defined]


async def test_poison_and_unrouted_records_are_dead_lettered_and_the_stream_goes_on(
    kafka: KafkaSettings, sla
) -> None:
    publisher = Publisher(kafka, client_id="test")
    await publisher.start(wait=True)
    topic = kafka.topics.name(Stream.ROUTED)
    fut = await publisher.send(topic, b"not json", key=b"hx", headers=[])
    await fut
    unrouted = event("submitted", "hy", T0).model_copy(update={"route": None})
    await publisher.publish_many(
        [Outbound(topic, unrouted), Outbound(topic, event("submitted", "hz", T0))]
    )
    await publisher.stop()
    decisions = await read_until(
        kafka, kafka.topics.name(Stream.DECISIONS), lambda es: "sla.opened" in types(es, "hz")
    )
    assert types(decisions, "hy") == []
    dlq = await read_all(kafka, kafka.topics.dlq(Stream.ROUTED))
    reasons = {dict(r.headers)["dlq.code"] for r in dlq}
    assert reasons == {b"invalid", b"unrouted"}
    assert {r.value for r in dlq if dict(r.headers)["dlq.code"] == b"invalid"} == {b"not json"}


async def test_case_view_attributes_time_and_detects_ping_pong(kafka: KafkaSettings, sla) -> None:
    _, clock, client = sla
    base = route()
    back = RouteV1.model_validate(
        {"from": "it-l2", "to": "service-desk", "kind": "incident", "standard": base.standard}
    )
    a = event("submitted", "c-1", T0, via=base)
    b = event("submitted", "c-2", minutes(T0, 60), via=back)
    c = event("submitted", "c-3", minutes(T0, 90), via=base)
    same_case = [
        e.model_copy(update={"data": {**e.data, "case_id": "order-4711"}}) for e in (a, b, c)
    ]
    await publish(
        kafka,
        *[Envelope.model_validate(e.model_dump()) for e in same_case],
        event("completed", "c-1", minutes(T0, 60)),
        event("completed", "c-2", minutes(T0, 90)),
    )
    clock.advance(timedelta(minutes=120))

    async def case() -> dict | None:
        r = await client.get("/v1/cases/order-4711")
        return r.json() if r.status_code == 200 and len(r.json()["handoffs"]) == 3 else None

    body = await wait_for(case, what="the case with its three handoffs")
    assert body["path"] == ["service-desk", "it-l2", "service-desk", "it-l2"]
    assert body["ping_pong"] is True
    assert [b["handoff_id"] for b in body["bounces"]] == ["c-2", "c-3"]
    assert [b["handoff_id"] for b in body["ping_pongs"]] == ["c-2", "c-3"]
    held = {t["team"]: t["held_wall_seconds"] for t in body["teams"]}
    assert held == {"it-l2": 3600 + 1800, "service-desk": 1800}


def _unreadable(metrics_text: str) -> float:
    line = next(x for x in metrics_text.splitlines() if x.startswith("handoff_sla_changelog_unr"))
    return float(line.split()[-1])


async def test_an_unreadable_changelog_record_is_skipped_loudly_not_fatal(
    kafka: KafkaSettings,
) -> None:
    clock = FakeClock(T0)
    app = create_app(Settings(kafka=kafka, api_keys=ADMIN_KEYS), clock=clock)
    async with app.router.lifespan_context(app):
        await wait_for(lambda: app.state.consumer.ready, what="sla ready")
        await publish(kafka, event("submitted", "h-ok", T0))
        await wait_for(
            lambda: any("h-ok" in b.handoffs for b in app.state.consumer.books().values()),
            what="h-ok held",
        )
    # Something that is no record of ours lands in the changelog (an old format, a bad tool).
    publisher = Publisher(kafka, client_id="test")
    await publisher.start(wait=True)
    topic = kafka.topics.name(Stream.SLA_STATE)
    # And a record with a sound header whose body is not ours: found on the handoff's first use.
    sound_header = changelog.encode(Handoff("h-worn"))[: changelog._HEADER.size]
    worn = changelog._HEADER.pack(*changelog._HEADER.unpack(sound_header)[:5], 4, 0, 0) + b"\xff"
    for partition in range(kafka.partitions):
        for key, value in ((b"h-bad", b'{"old": "format"}'), (b"h-worn", worn + b"\xff" * 3)):
            await (await publisher.send(topic, value, key=key, headers=[], partition=partition))
    await publisher.stop()

    app = create_app(Settings(kafka=kafka, api_keys=ADMIN_KEYS), clock=clock)
    async with app.router.lifespan_context(app):
        await wait_for(lambda: app.state.consumer.ready, what="sla ready after restore")
        held = {h for b in app.state.consumer.books().values() for h in b.handoffs}
        assert "h-ok" in held and "h-bad" not in held
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sla", headers=AUTH
        ) as client:
            assert (await client.get("/v1/handoffs/h-ok")).status_code == 200
            text = (await client.get("/metrics")).text
            assert _unreadable(text) == kafka.partitions

            async def found_on_first_use() -> bool:
                return _unreadable((await client.get("/metrics")).text) == kafka.partitions + 1

            await publish(kafka, event("submitted", "h-worn", T0))
            await wait_for(found_on_first_use, what="h-worn's record found unreadable on first use")

            # Lost, loudly; its event opened it anew and it is decided as any other.
            async def held_anew() -> bool:
                return (await client.get("/v1/handoffs/h-worn")).status_code == 200

            await wait_for(held_anew, what="h-worn opened anew")


async def test_an_uncomputable_event_is_dead_lettered_with_its_reason_and_the_partition_goes_on(
    kafka: KafkaSettings, sla
) -> None:
    app, _, _ = sla
    long_route = route(response="1h", resolution="87000h")
    await publish(
        kafka,
        event("submitted", "h-2199", datetime(2199, 12, 20, tzinfo=UTC), via=long_route),
        event("submitted", "h-after", T0),
    )
    await read_until(
        kafka, kafka.topics.name(Stream.DECISIONS), lambda es: "sla.opened" in types(es, "h-after")
    )
    dlq = await read_all(kafka, kafka.topics.dlq(Stream.ROUTED))
    assert [(r.key, dict(r.headers)["dlq.code"]) for r in dlq] == [(b"h-2199", b"uncomputable")]
    assert b"1990..2199" in dict(dlq[0].headers)["dlq.reason"]
    assert app.state.consumer.ready


async def test_any_instance_answers_for_a_handoff_another_instance_owns(
    kafka: KafkaSettings,
) -> None:
    clock = FakeClock(T0)
    first, second = (
        create_app(Settings(kafka=kafka, api_keys=ADMIN_KEYS), clock=clock) for _ in range(2)
    )
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        await wait_for(
            lambda: first.state.consumer.ready and second.state.consumer.ready,
            what="both instances ready",
        )

        def owned(app: FastAPI) -> set[int]:
            return set(app.state.consumer.partitions())

        await wait_for(lambda: owned(first) and owned(second), what="partitions split")
        ids = [f"any-{i}" for i in range(20)]
        await publish(kafka, *(event("submitted", h, T0) for h in ids))
        for app in (first, second):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://sla", headers=AUTH
            ) as client:

                async def everything(c: httpx.AsyncClient = client) -> bool:
                    codes = [(await c.get(f"/v1/handoffs/{h}")).status_code for h in ids]
                    return codes == [200] * len(ids)

                await wait_for(everything, what="every handoff answered by this instance")
                listed = (await client.get("/v1/handoffs", params={"limit": 100})).json()
                assert sorted(i["handoff_id"] for i in listed["items"]) == sorted(ids)
        held = [
            {h for b in app.state.consumer.books().values() for h in b.handoffs}
            for app in (first, second)
        ]
        assert held[0] and held[1] and not held[0] & held[1]  # each owns only some of them


async def test_events_of_a_handoff_that_never_opened_are_dead_lettered_as_unknown_handoff(
    kafka: KafkaSettings,
) -> None:
    """Kept through a restart while the opening may still come, then given up on: the events
    go to the dead-letter topic as they came, with the reason, none silently forgotten."""
    clock = FakeClock(T0)
    settings = Settings(kafka=kafka, api_keys=ADMIN_KEYS, orphan_retention_s=3600)
    orphan = [event("accepted", "h-never", T0), event("completed", "h-never", minutes(T0, 5))]
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        await wait_for(lambda: app.state.consumer.ready, what="sla ready")
        await publish(kafka, *orphan, event("accepted", "h-late", T0))

        async def committed() -> bool:  # in the changelog, so the restart restores them
            records = await read_all(kafka, kafka.topics.name(Stream.SLA_STATE))
            return {b"h-never", b"h-late"} <= {r.key for r in records}

        await wait_for(committed, what="the orphans committed to the changelog")
    clock.set(minutes(T0, 30))
    app = create_app(settings, clock=clock)  # restored from the changelog
    async with app.router.lifespan_context(app):
        await wait_for(lambda: app.state.consumer.ready, what="sla ready after restore")
        await publish(kafka, event("submitted", "h-late", minutes(T0, -5)))  # it came in time
        await read_until(
            kafka,
            kafka.topics.name(Stream.DECISIONS),
            lambda es: "sla.met" in types(es, "h-late"),
        )
        clock.set(minutes(T0, 61))
        dlq = kafka.topics.dlq(Stream.ROUTED)

        async def dead_lettered() -> list | None:  # type: ignore[type-arg]
            records = [r for r in await read_all(kafka, dlq) if r.key == b"h-never"]
            return records if len(records) == 2 else None

        records = await wait_for(dead_lettered, what="the orphan's events dead-lettered")
    assert [Envelope.from_bytes(r.value).event_id for r in records] == [e.event_id for e in orphan]
    headers = dict(records[0].headers)
    assert headers["dlq.code"] == b"unknown-handoff"
    assert b"no submitted or expected event arrived" in headers["dlq.reason"]
    assert b"h-never" in headers["dlq.reason"]
    assert not [r for r in await read_all(kafka, dlq) if r.key == b"h-late"]
