"""A consumer loop whose task dies says why in the log, and reports itself not running (the
services' readiness reads `running`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from shared.kafka import ConsumerLoop, ProcessedCounter, Publisher
from shared.settings import KafkaSettings


class BrokenPublisher:
    """A publisher that can never connect (what the loop waits for before joining)."""

    async def start(self, wait: bool = False) -> None:
        raise RuntimeError("no producer for you")


async def _handler(*_: Any) -> list[Any]:
    return []


async def test_a_loop_whose_task_dies_logs_why_and_is_not_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = ConsumerLoop(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        topics=["t"],
        group_id="dying",
        handler=_handler,
        publisher=cast(Publisher, BrokenPublisher()),
        dlq_topic=lambda topic: f"{topic}.dlq",
        processed=ProcessedCounter(CollectorRegistry()),
        known_event_types=frozenset(),
    )
    caplog.set_level(logging.ERROR, logger="shared.kafka")
    await loop.start()
    for _ in range(100):
        if not loop.running:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the done callback runs on the next turn
    assert not loop.running
    assert any(
        "consumer dying stopped" in r.getMessage() and "no producer for you" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    await loop.stop()  # stopping a dead loop is quiet
