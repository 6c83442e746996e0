"""sla benchmarks: memory per open handoff, state rebuild, breach-detection delay, throughput.

    .venv/bin/python bench/bench_sla.py [memory|rebuild|breach|throughput|all] [--n N]

Figures for SPEC section 6: 1,000,000 open handoffs in <= 0.5 GB; a missed decision within
150 ms (p99) of its deadline under load; rebuild <= 10 s per million open handoffs. Kafka parts
run against a real broker started here (port 19492) unless BATON_BENCH_BOOTSTRAP is set.
Prints its figures; asserts nothing (machines here are shared and noisy). Every Kafka figure
is printed beside a floor measured in the same run on the same broker (bench/floors.py) and
the ratio between them: absolute times move from machine to machine, the ratio does not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "bench")]

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from floors import Ratio, pct, read_floor, roundtrip_floor, transact_floor  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from builders import OFFICE, event, route, standard  # noqa: E402
from shared.calendar import to_us  # noqa: E402
from shared.clock import SystemClock  # noqa: E402
from shared.contracts import Priority, ServiceStandardV1  # noqa: E402
from shared.events import Envelope  # noqa: E402
from shared.heap import YOUNG_THRESHOLD  # noqa: E402
from shared.kafka import client_options, ensure_topics  # noqa: E402
from shared.settings import KafkaSettings  # noqa: E402
from shared.topics import Stream  # noqa: E402
from sla.adapters import changelog  # noqa: E402
from sla.adapters.telemetry import SlaTelemetry  # noqa: E402
from sla.consumer import SlaConsumer  # noqa: E402
from sla.domain.book import Book, Incoming, standard_key  # noqa: E402
from sla.domain.facts import Fact, FactType  # noqa: E402
from sla.domain.handoff import Head, Opening  # noqa: E402
from support import bench_broker, fresh_settings, wait_for  # noqa: E402

US = 1_000_000


def office_standard() -> ServiceStandardV1:
    """An incident route's standard on the Brussels office calendar."""
    targets = {
        Priority.P1: ("15m", "4h"),
        Priority.P2: ("30m", "8h"),
        Priority.P3: ("2h", "16h"),
        Priority.P4: ("8h", "40h"),
    }
    return standard("incident-apps", calendar=OFFICE, targets=targets)


def open_handoffs(n: int, now: int):  # type: ignore[no-untyped-def]
    """n realistic open handoffs: uuid ids, unique case ids, submitted in the last hours."""
    std = office_standard()
    head = Head("incident", "service-desk", "it-l2-apps", standard_key(std))
    priorities = list(Priority)
    for i in range(n):
        fact = Fact(now - (i % 7200) * US, FactType.SUBMITTED, str(uuid.uuid4()))
        opening = Opening(head, f"INC-{1_000_000 + i}", priorities[i % 4], None)
        yield Incoming(str(uuid.uuid4()), fact, opening, std)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_memory(n: int) -> None:
    """Memory of n open handoffs held by one partition book (the sla instance's state)."""
    if os.environ.get("BATON_BENCH_CHILD") != "memory":
        # A fresh process, so the RSS figure is the state's and not an earlier bench's.
        env = {**os.environ, "BATON_BENCH_CHILD": "memory"}
        subprocess.run([sys.executable, __file__, "memory", "--n", str(n)], env=env, check=True)
        return
    now = to_us(datetime.now(UTC))
    # Bytes per handoff from tracemalloc on a sample (tracemalloc's own bookkeeping would
    # inflate the RSS of a full run), then the full run without it for the process RSS.
    sample = min(n, 100_000)
    book = Book(86400 * US, 86400 * US)
    tracemalloc.start()
    for incoming in open_handoffs(sample, now):
        book.apply(incoming, now)
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_handoff = traced / sample
    del book
    gc.collect()
    base_rss = rss_mb()
    book = Book(86400 * US, 86400 * US)
    started = time.perf_counter()
    for incoming in open_handoffs(n, now):
        book.apply(incoming, now)
    elapsed = time.perf_counter() - started
    gc.collect()
    grown = rss_mb() - base_rss
    print(f"memory: {n:,} open handoffs held by one sla instance (business-calendar route)")
    print(f"  Python heap per handoff   {per_handoff:6.0f} B (tracemalloc, {sample:,} sample)")
    print(
        f"  process RSS growth        {grown:6.0f} MiB = {grown * 2**20 / n:.0f} B per handoff;"
        f" whole process {rss_mb():.0f} MiB (target <= 0.5 GB per million)"
    )
    print(
        f"  apply                     {elapsed / n * 1e6:6.1f} us per submitted event "
        f"({n / elapsed:,.0f}/s, domain only)"
    )


async def produce(
    kafka: KafkaSettings, records: list[tuple[str, bytes, bytes, int | None]]
) -> None:
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=1 << 20, **client_options(kafka)
    )
    await producer.start()
    try:
        futures = []
        for topic, key, value, partition in records:
            futures.append(await producer.send(topic, value, key=key, partition=partition))
            if len(futures) >= 20000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def bench_rebuild(bootstrap: str, n: int) -> None:
    """Time to rebuild one partition's state from a changelog of n open handoffs."""
    kafka = fresh_settings(bootstrap, partitions=1)
    await ensure_topics(kafka)
    topic = kafka.topics.name(Stream.SLA_STATE)
    now = to_us(datetime.now(UTC))
    book = Book(86400 * US, 86400 * US)
    records: list[tuple[str, bytes, bytes, int | None]] = []
    std = office_standard()
    key, value = changelog.standard_record(std, standard_key(std))
    records.append((topic, key, value, 0))
    started = time.perf_counter()
    for incoming in open_handoffs(n, now):
        step = book.apply(incoming, now)
        assert step is not None
        records.append((topic, incoming.handoff_id.encode(), changelog.encode(step.handoff), 0))
        del book.handoffs[incoming.handoff_id]
    size = sum(len(r[2]) for r in records)
    print(
        f"rebuild: {n:,} changelog records ({size / 2**20:.0f} MiB) built in "
        f"{time.perf_counter() - started:.1f}s; producing..."
    )
    started = time.perf_counter()
    await produce(kafka, records)
    print(f"  produced in {time.perf_counter() - started:.1f}s")
    del records
    gc.collect()
    registry = CollectorRegistry()
    consumer = sla_consumer(kafka, registry, 86400)
    await consumer.start()
    await wait_for(lambda: consumer.ready, within=600, interval=0.05, what="restored")
    restored = sum(len(b) for b in consumer.books().values())
    seconds = sample_sum(registry, "handoff_sla_restore_seconds")
    await consumer.stop()
    floor, count = await read_floor(kafka, TopicPartition(topic, 0))
    r = Ratio(seconds, floor)
    print(
        f"  restored {restored:,} handoffs in {seconds:.2f}s "
        f"= {seconds / restored * 1e6:.2f} s per million (target <= 10 s, aim 5 s)"
    )
    print(
        f"  floor, bare read_committed read of the same {count:,} records: {floor:.2f}s; "
        f"rebuild = {r.ratio:.2f} x floor"
    )


def sla_consumer(
    kafka: KafkaSettings, registry: CollectorRegistry, retention_s: int
) -> SlaConsumer:
    """One sla group member on `kafka`, as sla.main wires it (without the HTTP side)."""
    telemetry = SlaTelemetry(registry, kafka.topics.name(Stream.DECISIONS))
    return SlaConsumer(
        kafka,
        clock=SystemClock(),
        telemetry=telemetry,
        group=kafka.group("sla"),
        retention_us=retention_s * US,
        orphan_retention_us=86400 * US,
        idle_us=60 * US,
    )


def sample_sum(registry: CollectorRegistry, family: str, suffix: str = "_sum") -> float:
    """The sum of a family's samples ending in `suffix` (e.g. a histogram's _sum)."""
    return sum(
        s.value
        for m in registry.collect()
        if m.name == family
        for s in m.samples
        if s.name.endswith(suffix)
    )


async def bench_breach(bootstrap: str, n: int, load_rate: int, partitions: int = 6) -> None:
    """Delay from deadlines to their missed decisions being readable on Kafka, under load."""
    kafka = fresh_settings(bootstrap, partitions=partitions)
    await ensure_topics(kafka)
    engine = sla_consumer(kafka, CollectorRegistry(), 3600)
    routed = kafka.topics.name(Stream.ROUTED)
    fast = route(response="60s", resolution="1h", warnings=(), route_id="bench-fast")
    slow = route(response="4h", resolution="8h", warnings=(), route_id="bench-slow")
    now = datetime.now(UTC)
    window_start, window = 25.0, 20.0
    # n handoffs whose response deadlines fall evenly in [now+25s, now+45s].
    due = [
        event(
            "submitted",
            f"due-{i}",
            now - timedelta(seconds=60) + timedelta(seconds=window_start + window * i / n),
            via=fast,
        )
        for i in range(n)
    ]
    await produce(kafka, [(routed, e.key.encode(), e.to_bytes(), None) for e in due])
    await engine.start()
    consumer = AIOKafkaConsumer(
        kafka.topics.name(Stream.DECISIONS),
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
        **client_options(kafka),
    )
    await consumer.start()
    delays: list[float] = []

    async def watch() -> None:
        while len(delays) < n:
            batches = await consumer.getmany(timeout_ms=50)
            seen = datetime.now(UTC)
            for records in batches.values():
                for record in records:
                    env = Envelope.from_bytes(record.value)
                    if env.event_type == "sla.missed" and env.key.startswith("due-"):
                        deadline = env.payload.deadline  # type: ignore[attr-defined]
                        delays.append((seen - deadline).total_seconds() * 1000)

    async def load() -> None:
        # Steady background load while the deadlines pass: new handoffs and their events.
        producer = AIOKafkaProducer(acks="all", linger_ms=2, **client_options(kafka))
        await producer.start()
        sent, t0 = 0, time.perf_counter()
        try:
            while len(delays) < n and time.perf_counter() - t0 < window_start + window + 30:
                i = sent
                kind = ("submitted", "accepted", "completed")[i % 3]
                hid = f"load-{i // 3}"
                env = event(kind, hid, datetime.now(UTC), via=slow if kind == "submitted" else None)
                await producer.send(routed, env.to_bytes(), key=hid.encode())
                sent += 1
                ahead = sent / load_rate - (time.perf_counter() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()
        print(f"  background load: {sent:,} events at {sent / (time.perf_counter() - t0):.0f}/s")

    await asyncio.wait_for(asyncio.gather(watch(), load()), timeout=window_start + window + 90)
    await consumer.stop()
    await engine.stop()
    delays.sort()
    floor = await roundtrip_floor(kafka)
    r = Ratio(pct(delays, 99), pct(floor, 99))
    print(
        f"breach detection: {len(delays):,} deadlines over {window:.0f}s "
        f"({n / window:.0f}/s), {partitions} partitions, under {load_rate} events/s"
    )
    print(
        f"  deadline -> missed decision readable on Kafka: p50 {pct(delays, 50):.0f} ms  "
        f"p95 {pct(delays, 95):.0f} ms  p99 {pct(delays, 99):.0f} ms  max {delays[-1]:.0f} ms "
        f"(target p99 <= 150 ms)"
    )
    print(
        f"  floor, bare transactional produce -> read_committed read, {len(floor)} round trips: "
        f"p50 {pct(floor, 50):.0f} ms  p99 {pct(floor, 99):.0f} ms; "
        f"breach p99 = {r.ratio:.1f} x floor p99"
    )


async def bench_throughput(bootstrap: str, handoffs: int) -> None:
    """Drain a backlog of routed events: events/s and decisions/s of one instance."""
    kafka = fresh_settings(bootstrap, partitions=6)
    await ensure_topics(kafka)
    routed = kafka.topics.name(Stream.ROUTED)
    base = datetime.now(UTC) - timedelta(days=2)
    events: list[Envelope] = []
    for i in range(handoffs):
        t = base + timedelta(seconds=i)
        hid = f"t-{i}"
        events += [
            event("submitted", hid, t, priority=Priority.P2),
            event("accepted", hid, t + timedelta(minutes=5 + i % 60)),
            event("completed", hid, t + timedelta(minutes=90 + i % 300)),
        ]
    await produce(kafka, [(routed, e.key.encode(), e.to_bytes(), None) for e in events])
    registry = CollectorRegistry()
    engine = sla_consumer(kafka, registry, 30 * 86400)
    ends = await end_offsets(kafka, routed)
    total = sum(ends.values())
    started = time.perf_counter()
    await engine.start()

    async def drained() -> bool:
        return await committed(kafka, kafka.group("sla"), ends) >= total

    await wait_for(drained, within=3600, interval=0.5, what="backlog drained")
    elapsed = time.perf_counter() - started
    decisions = sample_sum(registry, "handoff_sla_decisions", "_total")
    await engine.stop()
    floor = await transact_floor(kafka, routed, total)
    rate = total / elapsed
    r = Ratio(rate, floor)
    print(
        f"throughput: {total:,} routed events drained in {elapsed:.1f}s "
        f"(incl. group join) = {rate:,.0f} events/s, "
        f"{decisions / elapsed:,.0f} decisions/s ({decisions:,.0f} decisions)"
    )
    print(
        f"  floor, bare consume -> transactional produce of the same records: "
        f"{floor:,.0f} records/s; sla = {r.ratio:.2f} x floor"
    )


async def end_offsets(kafka: KafkaSettings, topic: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of a topic."""
    consumer = AIOKafkaConsumer(**client_options(kafka))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka.partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def committed(kafka: KafkaSettings, group: str, ends: dict[TopicPartition, int]) -> int:
    """How many records of `ends`' partitions the group has committed."""
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **client_options(kafka))
    await consumer.start()
    try:
        return sum([await consumer.committed(tp) or 0 for tp in ends])
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["memory", "rebuild", "breach", "throughput", "all"],
    )
    parser.add_argument("--n", type=int, default=None)
    args = parser.parse_args()
    if args.what == "memory":
        bench_memory(args.n or 1_000_000)
        return
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])  # as every service runs
    with bench_broker() as bootstrap:
        if args.what in ("all",):
            bench_memory(args.n or 1_000_000)
        if args.what in ("rebuild", "all"):
            asyncio.run(bench_rebuild(bootstrap, args.n or 1_000_000))
        if args.what in ("throughput", "all"):
            asyncio.run(bench_throughput(bootstrap, (args.n or 10_000)))
        if args.what in ("breach", "all"):
            asyncio.run(bench_breach(bootstrap, args.n or 5_000, load_rate=500))


if __name__ == "__main__":
    main()
