"""sla deciding history at full speed: the BPI Challenge 2013 incident log replayed.

    .venv/bin/python bench/bench_replay.py [--limit N]

The VINST log of Volvo IT Belgium (Steeman 2013, `../shared/datasets/VINST-new.csv`) becomes
routed lifecycle events the way a backfill import would write them: one handoff per change of
support team (`Involved ST`), `submitted` when the case reaches the team, `accepted` at the
team's first `Accepted` status (or when it hands the case on, if it never showed one), and
`completed` when the case moves to the next team or ends -- 28,362 events for 9,454 handoffs
between 649 teams, in event-time order, on the Brussels office calendar (4 h response, 16 h
resolution; impact Major/High/Medium/Low as P1..P4).

All of it is written to `handoff.routed.v1` first; then one sla instance (a process, as in
production) is started and timed from its first committed transaction until its committed
offsets reach the end of every partition. Printed beside a same-run floor: a bare
consume -> transactional produce loop over the same records on the same broker
(bench/floors.py). Target (SPEC section 6): >= 2,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "bench")]

import httpx  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from floors import Ratio, transact_floor  # noqa: E402

from builders import OFFICE, standard  # noqa: E402
from shared.contracts import Priority, RouteV1  # noqa: E402
from shared.events import (  # noqa: E402
    Envelope,
    HandoffAcceptedV1,
    HandoffCompletedV1,
    HandoffSubmittedV1,
    derived_id,
    make_envelope,
)
from shared.kafka import client_options, ensure_topics  # noqa: E402
from shared.topics import Stream  # noqa: E402
from support import ServiceProcess, bench_broker, fresh_settings, read_all, service_env  # noqa: E402

DATASETS = [
    Path(p)
    for p in (os.environ.get("BATON_DATASETS"), REPO.parent / "shared" / "datasets")
    if p is not None
] + [REPO.parent.parent / "shared" / "datasets"]  # a worktree under /work/wt/<name>
LOG = next((d / "VINST-new.csv" for d in DATASETS if (d / "VINST-new.csv").exists()), DATASETS[0])
IMPACT = {"Major": Priority.P1, "High": Priority.P2, "Medium": Priority.P3, "Low": Priority.P4}
STANDARD = standard(
    "bpi-incident",
    calendar=OFFICE,
    targets={p: ("4h", "16h") for p in Priority},
)


def slug(team: str) -> str:
    """A support team's name as a process id ('V5 3rd' -> 'v5-3rd')."""
    return re.sub(r"[^a-z0-9]+", "-", team.lower()).strip("-") or "unknown"


def handoffs(path: Path) -> list[Envelope]:
    """The log's team changes as routed submitted/accepted/completed events, in time order."""
    cases: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            cases[row["SR Number"]].append(row)
    out: list[tuple[datetime, int, Envelope]] = []
    seq = 0
    for case, rows in cases.items():
        stints: list[list[dict[str, str]]] = []
        for row in rows:
            if stints and stints[-1][0]["Involved ST"] == row["Involved ST"]:
                stints[-1].append(row)
            else:
                stints.append([row])
        for n, stint in enumerate(stints[1:], start=1):
            sender, receiver = slug(stints[n - 1][0]["Involved ST"]), slug(stint[0]["Involved ST"])
            if sender == receiver:
                continue
            hid = f"{case}-{n}"
            at = datetime.fromisoformat(stint[0]["Change Date+Time"])
            ended = (
                datetime.fromisoformat(stints[n + 1][0]["Change Date+Time"])
                if n + 1 < len(stints)
                else datetime.fromisoformat(stint[-1]["Change Date+Time"])
            )
            accepted = next(
                (
                    datetime.fromisoformat(r["Change Date+Time"])
                    for r in stint
                    if r["Status"] == "Accepted"
                ),
                ended,
            )
            route = RouteV1.model_validate(
                {"from": sender, "to": receiver, "kind": "incident", "standard": STANDARD}
            )
            opening = HandoffSubmittedV1.model_validate(
                {
                    "case_id": case,
                    "kind": "incident",
                    "from": sender,
                    "priority": IMPACT.get(stint[0]["SR Latest Impact"], Priority.P3),
                }
            )
            for kind, when, payload, via in (
                ("submitted", at, opening, route),
                ("accepted", accepted, HandoffAcceptedV1(), None),
                ("completed", ended, HandoffCompletedV1(), None),
            ):
                env = make_envelope(
                    payload,
                    key=hid,
                    producer="bench-replay",
                    occurred_at=when,
                    recorded_at=when,
                    event_id=derived_id("bpi2013", hid, kind),
                    correlation_id=case,
                    route=via,
                )
                seq += 1
                out.append((when, seq, env))
    out.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in out]


async def produce(kafka, events: list[Envelope]) -> None:  # type: ignore[no-untyped-def]
    producer = AIOKafkaProducer(acks="all", linger_ms=20, **client_options(kafka))
    await producer.start()
    try:
        topic = kafka.topics.name(Stream.ROUTED)
        futures = [await producer.send(topic, e.to_bytes(), key=e.key.encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def committed_progress(kafka, group: str, ends: dict[TopicPartition, int]) -> int:  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **client_options(kafka))
    await consumer.start()
    try:
        total = 0
        for tp in ends:
            total += await consumer.committed(tp) or 0
        return total
    finally:
        await consumer.stop()


async def count_decisions(kafka) -> int:  # type: ignore[no-untyped-def]
    return len(await read_all(kafka, kafka.topics.name(Stream.DECISIONS)))


def transaction_stats(text: str) -> tuple[float, float]:
    """(count, sum) of handoff_sla_transaction_seconds from a /metrics page."""
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith("handoff_sla_transaction_seconds_count"):
            count = float(line.split()[-1])
        elif line.startswith("handoff_sla_transaction_seconds_sum"):
            total = float(line.split()[-1])
    return count, total


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N events")
    parser.add_argument(
        "--log", type=Path, default=LOG, help="a VINST CSV (default: the whole BPI 2013 log)"
    )
    args = parser.parse_args()
    with bench_broker() as bootstrap:
        started = time.perf_counter()
        events = handoffs(args.log)[: args.limit]
        teams = {e.route.to_process for e in events if e.route} | {
            e.route.from_process for e in events if e.route
        }
        print(
            f"replay: {len(events):,} events for {len(events) // 3:,} handoffs between "
            f"{len(teams)} teams (BPI Challenge 2013), "
            f"built in {time.perf_counter() - started:.1f}s"
        )
        kafka = fresh_settings(bootstrap, partitions=6)
        await ensure_topics(kafka)
        await produce(kafka, events)
        topic = kafka.topics.name(Stream.ROUTED)
        ends = {TopicPartition(topic, p): 0 for p in range(kafka.partitions)}
        probe = AIOKafkaConsumer(**client_options(kafka))
        await probe.start()
        ends = await probe.end_offsets(list(ends))
        await probe.stop()
        total = sum(ends.values())
        sla = ServiceProcess("sla.main", service_env("SLA_", kafka), "bench-replay-sla")
        sla.start()
        group = kafka.group("sla")
        try:
            await sla.ready(within=120)
            first: tuple[float, int] | None = None
            done = 0
            while done < total:
                await asyncio.sleep(0.25)
                done = await committed_progress(kafka, group, ends)
                if first is None and done > 0:
                    first = (time.perf_counter(), done)
            assert first is not None
            elapsed = time.perf_counter() - first[0]
            rate = (total - first[1]) / elapsed if elapsed > 0 else float("inf")
            async with httpx.AsyncClient(base_url=sla.url) as client:
                count, seconds = transaction_stats((await client.get("/metrics")).text)
        finally:
            sla.stop()
        decisions = await count_decisions(kafka)
        floor = await transact_floor(kafka, topic, total)
        r = Ratio(rate, floor)
        print(
            f"  sla decided {total:,} historical events in {elapsed:.1f}s = {rate:,.0f} events/s "
            f"(target >= 2,000/s); {decisions:,} decisions ({decisions / total:.2f} per event); "
            f"{count:,.0f} transactions, mean {seconds / max(count, 1) * 1000:,.0f} ms"
        )
        print(
            f"  floor, bare consume -> transactional produce of the same records: "
            f"{floor:,.0f} records/s; sla = {r.ratio:.2f} x floor"
        )


if __name__ == "__main__":
    asyncio.run(main())
