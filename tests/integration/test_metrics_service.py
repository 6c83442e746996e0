"""The metrics service against the real broker: tables, decisions and lifecycle events in,
exact values out of `/metrics`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

import builders as b
from metrics.main import create_app
from metrics.settings import Settings
from shared.clock import FakeClock
from shared.events import Envelope
from shared.kafka import client_options, headers_of
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import read_all, wait_for

pytestmark = pytest.mark.kafka

PAIRS = [("sales", "warehouse"), ("hr", "payroll")]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], Any]


# --------------------------------------------------------------------------- helpers
# (the restart tests import these)


async def write_records(
    kafka: KafkaSettings, stream: Stream, records: Iterable[tuple[bytes, bytes | None]]
) -> None:
    """Write raw records (table rows, tombstones) with an idempotent, acks=all producer."""
    producer = AIOKafkaProducer(enable_idempotence=True, acks="all", **client_options(kafka))
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(kafka.topics.name(stream), value, key=key)
    finally:
        await producer.stop()


async def publish(kafka: KafkaSettings, stream: Stream, envelopes: Iterable[Envelope]) -> None:
    """Publish envelopes keyed by handoff id (as sla and routing do)."""
    producer = AIOKafkaProducer(enable_idempotence=True, acks="all", **client_options(kafka))
    await producer.start()
    try:
        futures = [
            await producer.send(
                kafka.topics.name(stream), e.to_bytes(), key=e.key.encode(), headers=headers_of(e)
            )
            for e in envelopes
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


@asynccontextmanager
async def running(
    kafka: KafkaSettings, clock: FakeClock | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client talking to it in-process."""
    settings = Settings(kafka=kafka, api_keys=b.ADMIN_KEYS)
    app = create_app(settings, clock or FakeClock(b.T0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://metrics", headers=b.AUTH
        ) as client:
            yield app, client


async def wait_ready(client: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await client.get("/health/ready")).status_code == 200

    await wait_for(ready, within=30, what="metrics ready")


async def scrape(client: httpx.AsyncClient, openmetrics: bool = False) -> Samples:
    """Every sample of /metrics by (name, labels)."""
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    parse = parse_om if openmetrics else parse_text
    return {
        (s.name, frozenset(s.labels.items())): s for f in parse(response.text) for s in f.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    found = samples.get((name, frozenset(labels.items())))
    return None if found is None else float(found.value)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    return sum(
        float(s.value)
        for (n, ls), s in samples.items()
        if n == name and set(labels.items()) <= set(ls)
    )


async def partitions_with_data(kafka: KafkaSettings) -> set[tuple[str, str]]:
    """(topic, partition) of every consumed partition that holds records."""
    topics = [kafka.topics.name(Stream.DECISIONS), kafka.topics.name(Stream.ROUTED)]
    consumer = AIOKafkaConsumer(*topics, **client_options(kafka))
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {(tp.topic, str(tp.partition)) for tp, end in ends.items() if end > 0}


def lags(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["topic"], dict(labels)["partition"]): s.value
        for (name, labels), s in samples.items()
        if name == "handoff_consumer_lag_records"
    }


async def settled(kafka: KafkaSettings, client: httpx.AsyncClient, done: Any) -> Samples:
    """Scrape until `done(samples)` holds and every partition holding records is committed to
    its end (a partition shows in the lag gauge once this lifetime committed it): nothing else
    can still arrive, what the last scrape shows is final."""
    wanted = await partitions_with_data(kafka)

    async def probe() -> Samples | None:
        samples = await scrape(client)
        lag = lags(samples)
        caught_up = wanted <= set(lag) and not any(lag.values())
        return samples if caught_up and done(samples) else None

    return await wait_for(probe, within=30, what="metrics to settle")


# --------------------------------------------------------------------------- tests


async def test_decisions_and_lifecycle_events_become_exact_counts(kafka: KafkaSettings) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )
    await write_records(
        kafka, Stream.STATUS, [(b"h-table", b.status_bytes(b.status("hr", "payroll")))]
    )
    async with running(kafka) as (_, client):
        await wait_ready(client)
        before = await scrape(client)
        sw = {"from_team": "sales", "to_team": "warehouse"}
        assert value(before, "handoff_opened_total", **sw, priority="P1") is None  # not yet
        assert value(before, "handoff_slo_objective_ratio", **sw, milestone="response") == 0.95

        decisions = [
            b.opened("h1", "sales", "warehouse", priority="P1"),
            b.opened("h2", "sales", "warehouse", priority="P1"),
            b.opened("h1", "sales", "warehouse", priority="P1", cycle=2),
            b.decision("missed", "h1", "sales", "warehouse", priority="P1", clock="response"),
            b.decision(
                "retracted",
                "h1",
                "sales",
                "warehouse",
                priority="P1",
                clock="response",
                retracted="missed",
            ),
            b.decision("met", "h1", "sales", "warehouse", priority="P1", clock="response"),
            b.decision(
                "stopped",
                "h1",
                "sales",
                "warehouse",
                priority="P1",
                clock="response",
                elapsed_wall=5400,
                elapsed_business=2700,
                target_seconds=900,
            ),
            b.decision("warning", "h2", "sales", "warehouse", priority="P1"),
            b.decision("met", "hx", "sales", "ghost-team"),  # unknown process: invalid
        ]
        duplicate = decisions[0]
        await publish(kafka, Stream.DECISIONS, [*decisions, duplicate])
        await publish(
            kafka,
            Stream.ROUTED,
            [
                b.submitted("h1", "sales", "warehouse"),
                b.rejected("h1"),
                b.rated("h1", 2),
                b.rated("h-table", 5),  # pair known from the status table
                b.rejected("h-nobody-knows"),  # invalid: no pair
            ],
        )

        def done(s: Samples) -> bool:
            return total(s, "handoff_events_processed_total") == 15

        s = await settled(kafka, client, done)
        p1 = {**sw, "priority": "P1"}
        response = {**p1, "milestone": "response"}
        assert value(s, "handoff_opened_total", **p1) == 3
        assert value(s, "handoff_target_outcomes_total", **response, outcome="missed") == 1
        assert value(s, "handoff_target_outcomes_total", **response, outcome="met") == 1
        assert value(s, "handoff_target_retractions_total", **response, retracted="missed") == 1
        at = {**sw, "milestone": "response"}  # durations and usage have no priority
        assert value(s, "handoff_duration_seconds_count", **at) == 1
        assert value(s, "handoff_duration_seconds_sum", **at) == 5400
        assert value(s, "handoff_target_usage_ratio_bucket", **at, le="2.0") == 0
        assert value(s, "handoff_target_usage_ratio_bucket", **at, le="+Inf") == 1
        assert value(s, "handoff_opened_total", **sw, priority="P2") is None  # never occurred
        assert value(s, "handoff_rework_total", **sw) == 1
        assert value(s, "handoff_satisfaction_rating_bucket", **sw, le="2.0") == 1
        assert value(s, "handoff_satisfaction_rating_count", from_team="hr", to_team="payroll") == 1
        assert total(s, "handoff_target_outcomes_total") == 2  # nothing else, no ghost label
        assert not [k for k in s if "ghost-team" in str(k)]

        processed = "handoff_events_processed_total"
        assert total(s, processed, result="duplicate") == 1  # the repeat of decisions[0]
        assert total(s, processed, result="ok") == 12
        assert total(s, processed, result="invalid") == 2
        assert value(s, processed, topic=kafka.topics.name(Stream.DECISIONS),
                     event_type="sla.met", result="invalid") == 1  # fmt: skip

        om = await scrape(client, openmetrics=True)
        bucket = om[("handoff_target_usage_ratio_bucket",
                     frozenset({**at, "le": "+Inf"}.items()))]  # fmt: skip
        assert bucket.exemplar.labels == {"handoff_id": "h1"}
        assert bucket.exemplar.value == 3.0

    dead = await read_all(kafka, kafka.topics.dlq(Stream.DECISIONS))
    assert [dict(r.headers)["dlq.code"] for r in dead] == [b"unknown-process"]


async def test_open_and_overdue_gauges_follow_the_status_table_and_the_clock(
    kafka: KafkaSettings,
) -> None:
    clock = FakeClock(b.T0)
    in_1h = b.T0 + timedelta(hours=1)
    ago_1h = b.T0 - timedelta(hours=1)
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )
    await write_records(
        kafka,
        Stream.STATUS,
        [
            (b"h1", b.status_bytes(b.status("sales", "warehouse", priority="P2",
                                             clocks=[("response", "running", None, ago_1h),
                                                     ("resolution", "running", None, in_1h)]))),
            (b"h2", b.status_bytes(b.status("sales", "warehouse", priority="P2",
                                             clocks=[("resolution", "paused", "missed", in_1h)]))),
            (b"h3", b.status_bytes(b.status("sales", "warehouse", priority="P2", state="returned",
                                             clocks=[("resolution", "stopped", None, ago_1h)]))),
            (b"h4", b.status_bytes(b.status("sales", "ghost", clocks=[("response", "running",
                                                                       None, ago_1h)]))),
        ],
    )  # fmt: skip
    async with running(kafka, clock) as (_, client):
        await wait_ready(client)
        p2 = {"from_team": "sales", "to_team": "warehouse", "priority": "P2"}
        response, resolution = {**p2, "milestone": "response"}, {**p2, "milestone": "resolution"}
        s = await scrape(client)
        assert value(s, "handoff_open_items", **p2) == 2
        assert value(s, "handoff_overdue_items", **response) == 1
        assert value(s, "handoff_overdue_items", **resolution) == 1  # the missed one
        oldest = "handoff_oldest_overdue_deadline_timestamp_seconds"
        assert value(s, oldest, **response) == ago_1h.timestamp()
        assert value(s, oldest, **resolution) == in_1h.timestamp()
        assert value(s, oldest, **{**p2, "priority": "P1", "milestone": "response"}) is None
        assert value(s, "handoff_target_seconds", **resolution) == 8 * 3600  # P2 is in use
        assert value(s, "handoff_target_seconds", **{**resolution, "priority": "P1"}) is None
        assert not [k for k in s if "ghost" in str(k)]

        clock.advance(timedelta(hours=2))
        s = await scrape(client)
        assert value(s, "handoff_overdue_items", **resolution) == 2

        # the table keeps being followed: h1 completes, h2 is forgotten; a new map adds a pair
        await write_records(
            kafka,
            Stream.STATUS,
            [
                (b"h1", b.status_bytes(b.status("sales", "warehouse", priority="P2",
                                                 state="completed"))),
                (b"h2", None),
            ],
        )  # fmt: skip
        new_map = b.process_map([*PAIRS, ("it-l1", "it-l2")], version=2)
        await write_records(kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(new_map))])

        async def updated() -> Samples | None:
            s = await scrape(client)
            new_pair = {"from_team": "it-l1", "to_team": "it-l2", "milestone": "response"}
            gone = value(s, "handoff_open_items", **p2) == 0
            return s if gone and value(s, "handoff_slo_objective_ratio", **new_pair) else None

        s = await wait_for(updated, what="table and map updates")
        assert value(s, "handoff_overdue_items", **response) is None  # nothing overdue now
        assert value(s, "handoff_overdue_items", **resolution) is None
        assert value(s, oldest, **resolution) is None


async def test_aborted_transactions_of_the_sla_service_are_never_counted(
    kafka: KafkaSettings,
) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )
    producer = AIOKafkaProducer(
        transactional_id=f"{kafka.topic_prefix}sla-tx", **client_options(kafka)
    )
    topic = kafka.topics.name(Stream.DECISIONS)
    await producer.start()
    try:
        with pytest.raises(RuntimeError):
            async with producer.transaction():
                for i in range(5):
                    env = b.opened("h1", "hr", "payroll", priority="P1", cycle=i + 1)
                    await producer.send(topic, env.to_bytes(), key=b"h1")
                raise RuntimeError("sla crashed inside its transaction")
        async with producer.transaction():
            env = b.opened("h1", "hr", "payroll", priority="P1")
            await producer.send(topic, env.to_bytes(), key=b"h1")  # same key: after the abort
    finally:
        await producer.stop()
    async with running(kafka) as (_, client):
        await wait_ready(client)
        labels = {"from_team": "hr", "to_team": "payroll", "priority": "P1"}

        async def counted() -> Samples | None:
            s = await scrape(client)
            return s if value(s, "handoff_opened_total", **labels) else None

        s = await wait_for(counted, what="the committed decision")
        assert value(s, "handoff_opened_total", **labels) == 1
        assert total(s, "handoff_events_processed_total") == 1


async def test_ready_only_once_a_process_map_is_published(kafka: KafkaSettings) -> None:
    async with running(kafka) as (_, client):

        async def checks() -> dict[str, bool]:
            body = (await client.get("/health/ready")).json()
            return body["checks"] if body["checks"]["status_table"] else {}

        assert (await wait_for(checks, what="tables caught up"))["process_map"] is False
        assert (await client.get("/health/ready")).status_code == 503
        await write_records(
            kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
        )
        await wait_ready(client)
        s = await scrape(client)
        assert value(s, "handoff_slo_objective_ratio", from_team="hr", to_team="payroll",
                     milestone="response") == 0.95  # fmt: skip


async def test_tables_written_in_transactions_are_caught_up_past_their_commit_markers(
    kafka: KafkaSettings,
) -> None:
    """sla writes the status table in transactions: a table ending with a commit marker must
    still count as caught up (the marker's offset is never returned as a record)."""
    producer = AIOKafkaProducer(
        transactional_id=f"{kafka.topic_prefix}tables-tx", **client_options(kafka)
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(
                kafka.topics.name(Stream.PROCESS_MAP),
                b.map_bytes(b.process_map(PAIRS)),
                key=b"current",
            )
            row = b.status("hr", "payroll", priority="P4")
            await producer.send(kafka.topics.name(Stream.STATUS), b.status_bytes(row), key=b"h1")
    finally:
        await producer.stop()
    async with running(kafka) as (_, client):
        await wait_ready(client)
        s = await scrape(client)
        assert value(s, "handoff_open_items", from_team="hr", to_team="payroll", priority="P4") == 1
