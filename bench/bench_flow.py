"""End-to-end latency on the running system (intake's throughput: bench/bench_intake.py).

    .venv/bin/python bench/bench_flow.py

The four services run as processes (as in `make run`) against a real broker (port 19492, or
BATON_BENCH_BOOTSTRAP); the load generator is this process (httpx, one core shared with the
broker and the services on a 2-core machine). Prints its figures (SPEC section 6):
- end-to-end at a steady rate: HTTP 202 -> the `sla.opened` decision readable on Kafka
  (target p50 <= 15 ms, p99 <= 75 ms at half load).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer  # noqa: E402

from shared.events import Envelope  # noqa: E402
from shared.kafka import client_options, ensure_topics  # noqa: E402
from shared.topics import Stream  # noqa: E402
from support import Broker, ServiceProcess, fresh_settings, service_env  # noqa: E402

KEY = "bench-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def end_to_end(url: str, kafka, rate: int, seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    """Latency from the 202 of a submitted handoff to its `sla.opened` decision on Kafka."""
    accepted_at: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        kafka.topics.name(Stream.DECISIONS),
        isolation_level="read_committed",
        auto_offset_reset="latest",
        fetch_max_wait_ms=5,
        **client_options(kafka),
    )
    await consumer.start()
    await asyncio.sleep(1.0)  # partitions assigned, positions at the end
    total = int(rate * seconds)
    done = asyncio.Event()

    async def watch() -> None:
        while len(latencies) < total:
            batches_ = await consumer.getmany(timeout_ms=20)
            now = time.perf_counter()
            for records in batches_.values():
                for record in records:
                    env = Envelope.from_bytes(record.value)
                    sent = (
                        accepted_at.pop(env.key, None) if env.event_type == "sla.opened" else None
                    )
                    if sent is not None:
                        latencies.append((now - sent) * 1000)
        done.set()

    async def post() -> None:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=url, headers=AUTH, limits=limits, timeout=30
        ) as client:
            started = time.perf_counter()

            async def one(i: int) -> None:
                hid = f"e2e-{uuid.uuid4().hex[:12]}"
                r = await client.post(
                    "/v1/handoffs",
                    json={
                        "handoff_id": hid,
                        "event_id": f"{hid}-s",
                        "case_id": f"C-{i}",
                        "kind": "heartbeat",
                        "from": "service-desk",
                        "priority": "P4",
                    },
                )
                assert r.status_code == 202, r.text
                accepted_at[hid] = time.perf_counter()

            tasks = []
            for i in range(total):
                tasks.append(asyncio.create_task(one(i)))
                ahead = (i + 1) / rate - (time.perf_counter() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await asyncio.gather(*tasks)

    watcher = asyncio.create_task(watch())
    await post()
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    except TimeoutError:
        watcher.cancel()
    await consumer.stop()
    return latencies


async def main() -> None:
    bootstrap = os.environ.get("BATON_BENCH_BOOTSTRAP")
    broker = None
    if bootstrap is None:
        broker = Broker(19492, "bench")
        broker.clean()
        broker.start()
        bootstrap = broker.bootstrap
    kafka = fresh_settings(bootstrap, partitions=6)
    await ensure_topics(kafka)
    keys = json.dumps([{"name": "bench", "key": KEY, "processes": ["*"]}])
    env = {
        "intake": {
            **service_env("INTAKE_", kafka),
            "INTAKE_API_KEYS": keys,
            "INTAKE_LOG_LEVEL": "WARNING",
        },
        "routing": {
            **service_env("ROUTING_", kafka),
            "ROUTING_PROCESS_MAP": str(REPO / "deploy" / "process-map.yaml"),
        },
        "sla": service_env("SLA_", kafka),
        "metrics": service_env("METRICS_", kafka),
    }
    procs = [ServiceProcess(f"{name}.main", e, f"bench-{name}") for name, e in env.items()]
    for proc in procs:
        proc.start()
    try:
        await asyncio.gather(*(p.ready() for p in procs))
        intake = procs[0].url
        print(
            f"system: 4 services + broker + load generator on {os.cpu_count()} cores, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        await asyncio.sleep(3)  # group joins settle
        # Warm-up, discarded: the first transaction of each partition and the first metadata
        # lookups of each topic cost once, not per event.
        await end_to_end(intake, kafka, 20, 3)
        # Latency first, on a quiet system (the throughput runs leave a backlog behind).
        for per_second in (20, 100):
            lat = await end_to_end(intake, kafka, per_second, 10)
            if not lat:
                print(f"end-to-end at {per_second}/s: no decision seen")
                continue
            print(
                f"end-to-end at {per_second} handoffs/s, HTTP 202 -> sla.opened on Kafka "
                f"({len(lat)} samples): p50 {percentile(lat, 50):.0f} ms  "
                f"p99 {percentile(lat, 99):.0f} ms  max {max(lat):.0f} ms"
            )
    finally:
        for proc in procs:
            proc.stop()
        if broker is not None:
            broker.clean()


if __name__ == "__main__":
    asyncio.run(main())
