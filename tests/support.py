"""Helpers for tests against the real broker: a broker process, waiting, reading topics back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.events import Envelope
from shared.kafka import client_options
from shared.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
T = TypeVar("T")


class Broker:
    """A single-node KRaft broker run by deploy/kafka/kafka.sh on its own ports and data dir."""

    def __init__(self, port: int, name: str) -> None:
        self.port = port
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(port + 1),
            "KAFKA_DATA_DIR": str(REPO / ".run" / f"kafka-{name}-{port}"),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, command: str) -> None:
        subprocess.run([str(KAFKA_SH), command], env=self.env, check=True, capture_output=True)

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def clean(self) -> None:
        self._run("clean")

    def kill(self) -> None:
        """SIGKILL the broker (a crash, not a controlled shutdown)."""
        pid_file = Path(self.env["KAFKA_DATA_DIR"]) / "kafka.pid"
        if pid_file.exists():
            subprocess.run(["kill", "-9", pid_file.read_text().strip()], check=False)


def fresh_settings(bootstrap: str, partitions: int = 2) -> KafkaSettings:
    """Kafka settings with a topic prefix no other test uses."""
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=partitions,
        request_timeout_ms=10000,
    )


async def wait_for(
    probe: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    within: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = probe()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


def _consumer(kafka: KafkaSettings, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        **client_options(kafka),
    )


async def read_until(
    kafka: KafkaSettings,
    topic: str,
    done: Callable[[list[Envelope]], bool],
    within: float = 30.0,
) -> list[Envelope]:
    """Read a topic from the beginning (read_committed) until `done(envelopes)` holds."""
    consumer = _consumer(kafka, topic)
    await consumer.start()
    out: list[Envelope] = []
    deadline = asyncio.get_running_loop().time() + within
    try:
        while not done(out):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out reading {topic}: {len(out)} records so far")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                out.extend(Envelope.from_bytes(r.value) for r in records)
    finally:
        await consumer.stop()
    return out


async def read_all(kafka: KafkaSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of a topic, up to its end offsets when called."""
    consumer = _consumer(kafka, topic)
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                out.extend(batch.get(tp, []))
    finally:
        await consumer.stop()
    return out
