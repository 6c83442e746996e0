"""Session-wide fixtures: one real Kafka broker for the whole test session (on its own port,
so a `make run` broker on 9092 can keep running), and fresh topics for every test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from support import Broker, fresh_settings

TEST_PORT = int(os.environ.get("BATON_TEST_KAFKA_PORT", "19092"))


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The session's broker: started clean, stopped and removed at the end."""
    b = Broker(TEST_PORT, "test")
    b.clean()
    b.start()
    yield b
    b.clean()


@pytest.fixture
async def kafka(broker: Broker) -> AsyncIterator[KafkaSettings]:
    """Settings for a test: every topic of the registry, freshly created under a new prefix."""
    settings = fresh_settings(broker.bootstrap)
    await ensure_topics(settings)
    yield settings
