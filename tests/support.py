"""Helpers for tests against the real broker: a broker process, waiting, reading topics back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from builders import ADMIN_KEYS_JSON
from shared.events import Envelope
from shared.kafka import client_options
from shared.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
T = TypeVar("T")


class Broker:
    """A single-node KRaft broker run by deploy/kafka/kafka.sh on its own ports and data dir."""

    def __init__(self, port: int, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        """`extra_env`: more of kafka.sh's settings (e.g. deploy/kafka/secure.sh's broker.env)."""
        self.port = port
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(port + 1),
            "KAFKA_DATA_DIR": str(REPO / ".run" / f"kafka-{name}-{port}"),
            **(extra_env or {}),
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


@contextlib.contextmanager
def bench_broker() -> Iterator[str]:
    """The bootstrap address a benchmark runs against: BATON_BENCH_BOOTSTRAP if set (make bench
    starts one broker for all of them), else a broker started here on port 19492 and removed
    afterwards."""
    bootstrap = os.environ.get("BATON_BENCH_BOOTSTRAP")
    if bootstrap is not None:
        yield bootstrap
        return
    broker = Broker(19492, "bench")
    broker.clean()
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.clean()


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


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """One Baton service run as its own process (uvicorn), as in production: so a test can
    SIGKILL it mid-stream and start it again."""

    def __init__(self, module: str, env: dict[str, str], name: str) -> None:
        self.module = module
        self.port = free_port()
        self.name = name
        self.env = {**os.environ, **env}
        self.log = REPO / ".run" / "test-logs" / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import sys

        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"{self.module}:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )

    async def ready(self, within: float = 60.0) -> None:
        """Wait until /health/ready answers 200."""
        import httpx

        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:

            async def probe() -> bool:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited; see {self.log}")
                try:
                    return (await client.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(probe, within=within, what=f"{self.name} ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM and wait (a graceful stop)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def service_env(prefix: str, kafka: KafkaSettings) -> dict[str, str]:
    """Environment that points a service (env prefix `prefix`, e.g. SLA_) at `kafka`."""
    return {
        f"{prefix}API_KEYS": ADMIN_KEYS_JSON,
        f"{prefix}KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        f"{prefix}KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        f"{prefix}KAFKA__PARTITIONS": str(kafka.partitions),
    }
