"""No double counting across restarts: what one lifetime of the metrics service exposed plus
what the next one exposes equals the number of decisions, after a crash or a clean stop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

import builders as b
from metrics.handlers import MetricsService
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import wait_for
from test_metrics_service import (
    PAIRS,
    Samples,
    publish,
    running,
    scrape,
    settled,
    total,
    wait_ready,
    write_records,
)

pytestmark = pytest.mark.kafka

OPENED = "handoff_opened_total"


def decisions(first: int, count: int) -> list[Any]:
    """`count` opened decisions of distinct handoffs (spread over both partitions)."""
    return [b.opened(f"h{i}", *PAIRS[i % 2], priority="P2") for i in range(first, first + count)]


def opened(samples: Samples) -> float:
    return total(samples, OPENED)


async def put_map(kafka: KafkaSettings) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )


def at_least(count: float) -> Any:
    return lambda samples: opened(samples) >= count


async def test_a_crash_before_the_commit_replays_exactly_what_was_never_exposed(
    kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )

    async with running(kafka) as (app, client):
        await wait_ready(client)
        await publish(kafka, Stream.DECISIONS, decisions(0, 20))
        s = await settled(kafka, client, at_least(20))
        assert opened(s) == 20  # committed, then exposed

        # The process "dies" between handling a batch and committing it: the commit never
        # happens and the consumer task ends there (as a SIGKILL would end it).
        died = asyncio.Event()

        async def die_instead_of_committing(self: AIOKafkaConsumer, offsets: Any = None) -> None:
            died.set()
            raise asyncio.CancelledError

        monkeypatch.setattr(AIOKafkaConsumer, "commit", die_instead_of_committing)
        await publish(kafka, Stream.DECISIONS, decisions(20, 15))
        await wait_for(died.is_set, what="the crash")
        service: MetricsService = app.state.service
        handled_not_committed = service.staging.pending()
        assert handled_not_committed > 0  # records were handled...
        exposed_first = opened(await scrape(client))
        assert exposed_first == 20  # ...but nothing of them was exposed

        async def unready() -> bool:
            answer = await client.get("/health/ready")
            return answer.status_code == 503 and not answer.json()["checks"]["consumer"]

        await wait_for(unready, what="readiness to report the dead consumer")
        monkeypatch.undo()

    async with running(kafka) as (_, client):
        await wait_ready(client)
        s = await settled(kafka, client, at_least(15))
        exposed_second = opened(s)

    assert exposed_second == 15  # the uncommitted records, replayed; the committed ones not
    assert exposed_first + exposed_second == 35


async def test_a_clean_restart_resumes_from_committed_offsets_without_replaying(
    kafka: KafkaSettings,
) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )
    async with running(kafka) as (_, client):
        await wait_ready(client)
        await publish(kafka, Stream.DECISIONS, decisions(0, 12))
        exposed_first = opened(await settled(kafka, client, at_least(12)))

    await publish(kafka, Stream.DECISIONS, decisions(12, 5))  # while the service is down
    async with running(kafka) as (_, client):
        await wait_ready(client)
        assert opened(await scrape(client)) <= 5  # a counter reset: starts again from 0
        s = await settled(kafka, client, at_least(5))
        exposed_second = opened(s)

    assert (exposed_first, exposed_second) == (12, 5)
