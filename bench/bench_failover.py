"""The stall when one of three sla instances dies: time until every partition decides again,
and the breach-detection delay meanwhile.

    .venv/bin/python bench/bench_failover.py [--open N] [--partitions P]

N open handoffs (default 2,000,000) are written straight into the changelog (`sla.state.v1`,
the records sla itself writes, spread over P partitions), three sla instances (processes, as
in production) restore them between them, then a steady load of short-deadline handoffs runs
(100 per second, 3 s response target: one missed decision every 10 ms, spread over the
partitions). One instance is SIGKILLed. The group notices when its session times out; the
survivors, with the sticky assignor, keep the partitions they held (their parked state is
caught up, not rebuilt) and restore only the partitions that moved. Printed: per partition the
longest gap between two visible missed decisions around the kill, the time until every
partition decides again, the breach-detection delay (deadline -> missed decision readable on
Kafka) before and after the kill, what each survivor restored, and beside them the floors
of the same run: the session timeout, and a bare read of one moved partition's changelog.

The status table is not pre-filled (each instance would read every row: what is measured here
is deciding, not the read side).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "bench")]

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from floors import pct, read_floor  # noqa: E402

from builders import event, route, standard  # noqa: E402
from shared.calendar import to_us  # noqa: E402
from shared.contracts import Priority  # noqa: E402
from shared.events import Envelope  # noqa: E402
from shared.kafka import client_options, ensure_topics  # noqa: E402
from shared.settings import KafkaSettings  # noqa: E402
from shared.topics import Stream  # noqa: E402
from sla.adapters import changelog  # noqa: E402
from sla.domain.book import standard_key  # noqa: E402
from sla.domain.facts import OPENED, Fact, FactType, pack  # noqa: E402
from sla.domain.handoff import Handoff, Head  # noqa: E402
from support import ServiceProcess, bench_broker, fresh_settings, service_env  # noqa: E402

US = 1_000_000
SESSION_TIMEOUT_S = 10.0  # aiokafka's default session.timeout.ms
RATE = 100  # measurement handoffs per second
TARGET_S = 3


async def fill_changelog(kafka: KafkaSettings, n: int) -> int:
    """n open handoffs (30-day targets on 24x7) as changelog records, spread round robin."""
    std = standard("bench-held", targets={p: ("720h", "720h") for p in Priority})
    key = standard_key(std)
    head = Head("incident", "service-desk", "it-l2", key)
    topic = kafka.topics.name(Stream.SLA_STATE)
    now = to_us(datetime.now(UTC))
    producer = AIOKafkaProducer(
        acks="all", linger_ms=50, max_batch_size=1 << 20, **client_options(kafka)
    )
    await producer.start()
    size = 0
    try:
        std_key, std_value = changelog.standard_record(std, key)
        for p in range(kafka.partitions):
            await producer.send(topic, std_value, key=std_key, partition=p)
        futures = []
        for i in range(n):
            start = now - (i % 3600) * US
            handoff_id = str(uuid.uuid4())
            fact = Fact(start, FactType.SUBMITTED, str(uuid.uuid4()))
            # As a restore would hold it: its 50 % warning, 15 days away, its one wake-up.
            handoff = Handoff.unread_record(handoff_id, b"", start + 360 * 3600 * US, None)
            handoff.read_back(
                head=head,
                case_id=f"INC-{i}",
                priority=Priority.P3,
                due=None,
                packed=pack([(fact, OPENED)]),
                marks=None,
                seen=now,
                closed_seen=None,
                waiting=None,
            )
            value = changelog.encode(handoff)
            size += len(value)
            futures.append(
                await producer.send(
                    topic, value, key=handoff_id.encode(), partition=i % kafka.partitions
                )
            )
            if len(futures) >= 50_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return size


async def load(kafka: KafkaSettings, stop: asyncio.Event, sent: list[int]) -> None:
    """RATE submitted handoffs per second whose response deadline is TARGET_S later."""
    fast = route(response=f"{TARGET_S}s", resolution="1h", warnings=(), route_id="bench-fast")
    producer = AIOKafkaProducer(acks="all", linger_ms=2, **client_options(kafka))
    await producer.start()
    topic = kafka.topics.name(Stream.ROUTED)
    started = time.perf_counter()
    try:
        while not stop.is_set():
            env = event("submitted", f"m-{sent[0]}", datetime.now(UTC), via=fast)
            await producer.send(topic, env.to_bytes(), key=env.key.encode())
            sent[0] += 1
            ahead = sent[0] / RATE - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await producer.stop()


async def watch(
    kafka: KafkaSettings, stop: asyncio.Event, seen: list[tuple[float, int, float]]
) -> None:
    """(seen at, partition, delay ms) of every missed decision of the measurement load."""
    consumer = AIOKafkaConsumer(
        kafka.topics.name(Stream.DECISIONS),
        isolation_level="read_committed",
        auto_offset_reset="latest",
        fetch_max_wait_ms=5,
        **client_options(kafka),
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = datetime.now(UTC)
            for tp, records in batches.items():
                for record in records:
                    env = Envelope.from_bytes(record.value)
                    if env.event_type == "sla.missed" and env.key.startswith("m-"):
                        deadline = env.payload.deadline  # type: ignore[attr-defined]
                        delay = (now - deadline).total_seconds() * 1000
                        seen.append((time.perf_counter(), tp.partition, delay))
    finally:
        await consumer.stop()


async def restores(url: str) -> str:
    """What an instance restored, from its /metrics: 'full: n in s, catch-up: n in s'."""
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for line in text.splitlines():
        for part in ("_count", "_sum"):
            prefix = f"handoff_sla_restore_seconds{part}"
            if line.startswith(prefix):
                kind = line.split('kind="')[1].split('"')[0]
                found[kind][part] = float(line.split()[-1])
    return ", ".join(
        f"{kind} {int(v.get('_count', 0))} in {v.get('_sum', 0):.1f}s"
        for kind, v in sorted(found.items())
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=2_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    with bench_broker() as bootstrap:
        procs: list[ServiceProcess] = []
        try:
            kafka = fresh_settings(bootstrap, partitions=args.partitions)
            await ensure_topics(kafka)
            started = time.perf_counter()
            size = await fill_changelog(kafka, args.open)
            gc.collect()
            print(
                f"failover: {args.open:,} open handoffs in the changelog ({size / 2**20:.0f} MiB, "
                f"{args.partitions} partitions), written in {time.perf_counter() - started:.0f}s"
            )
            env = service_env("SLA_", kafka)
            procs = [ServiceProcess("sla.main", env, f"bench-failover-{i}") for i in range(3)]
            started = time.perf_counter()
            for proc in procs:
                proc.start()
            await asyncio.gather(*(p.ready(within=900) for p in procs))
            print(f"  3 sla instances restored and ready in {time.perf_counter() - started:.0f}s")
            stop = asyncio.Event()
            sent = [0]
            seen: list[tuple[float, int, float]] = []
            tasks = [
                asyncio.create_task(load(kafka, stop, sent)),
                asyncio.create_task(watch(kafka, stop, seen)),
            ]
            await asyncio.sleep(15)  # steady state
            survivors = procs[:2]
            restored_before = [await restores(p.url) for p in survivors]
            victim = procs[2]
            killed_at = time.perf_counter()
            victim.kill()
            await asyncio.sleep(30)  # after the recovery
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

            before = [d for t, _, d in seen if killed_at - 10 <= t < killed_at]
            after = [d for t, _, d in seen if killed_at <= t]
            per_partition: dict[int, list[float]] = defaultdict(list)
            for t, p, _ in seen:
                if t >= killed_at - 5:
                    per_partition[p].append(t)
            gaps = {}
            resumed = {}
            for p, times in sorted(per_partition.items()):
                times.sort()
                pairs = list(itertools.pairwise(times))
                gap = max((b - a for a, b in pairs), default=0.0)
                gaps[p] = gap
                resumed[p] = (
                    max((b for a, b in pairs if b - a == gap), default=killed_at) - killed_at
                )
            every = max(resumed.values(), default=0.0)
            print(
                f"  killed one of the three (SIGKILL): every partition deciding again after "
                f"{every:.1f}s"
            )
            print(
                "  longest gap between missed decisions, per partition: "
                + ", ".join(f"p{p} {g:.1f}s" for p, g in gaps.items())
            )
            print(
                f"  breach detection, {len(before):,} deadlines in the 10s before the kill: p50 "
                f"{pct(before, 50):.0f} ms, p99 {pct(before, 99):.0f} ms; {len(after):,} after it: "
                f"p50 {pct(after, 50):.0f} ms, p99 {pct(after, 99):.0f} ms, max "
                f"{max(after, default=0):.0f} ms"
            )
            for proc, earlier in zip(survivors, restored_before, strict=True):
                later = await restores(proc.url)
                print(f"  {proc.name} restored (totals) before the kill: {earlier}; after: {later}")
            moved = TopicPartition(kafka.topics.name(Stream.SLA_STATE), 0)
            floor, count = await read_floor(kafka, moved)
            print(
                f"  floors: session timeout {SESSION_TIMEOUT_S:.0f}s (how long the group takes to "
                f"notice a SIGKILL); bare read of one partition's changelog ({count:,} records) "
                f"{floor:.1f}s; stall = {every / (SESSION_TIMEOUT_S + floor):.2f} x "
                "(timeout + read)"
            )
        finally:
            for proc in procs:
                proc.stop()


if __name__ == "__main__":
    asyncio.run(main())
