"""Counters that survive a restart exactly: the metrics service's totals are a function of the
committed log (its changelog `metrics.state.v1` is written in the same transaction as its
offsets), restored at start and continued -- after a clean stop, and after a SIGKILL under load,
with zero drift against the truth counted from the decisions topic itself."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

import builders as b
from shared.events import Envelope, SlaDecisionV1, SlaOpenedV1
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import ServiceProcess, read_all, service_env, wait_for
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
OUTCOMES = "handoff_target_outcomes_total"
TEAMS = [f"t{i}" for i in range(8)]
LOAD_PAIRS = [(f, t) for f in TEAMS[:4] for t in TEAMS[4:]]  # 16 pairs


def decisions(first: int, count: int) -> list[Any]:
    """`count` opened decisions of distinct handoffs (spread over both partitions)."""
    return [b.opened(f"h{i}", *PAIRS[i % 2], priority="P2") for i in range(first, first + count)]


def at_least(count: float) -> Any:
    return lambda samples: total(samples, OPENED) >= count


async def test_a_clean_restart_continues_the_counters_instead_of_resetting_them(
    kafka: KafkaSettings,
) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(PAIRS)))]
    )
    async with running(kafka) as (_, client):
        await wait_ready(client)
        await publish(kafka, Stream.DECISIONS, decisions(0, 12))
        assert total(await settled(kafka, client, at_least(12)), OPENED) == 12

    await publish(kafka, Stream.DECISIONS, decisions(12, 5))  # while the service is down
    async with running(kafka) as (_, client):
        await wait_ready(client)
        assert total(await scrape(client), OPENED) >= 12  # restored before consuming: no reset
        assert total(await settled(kafka, client, at_least(17)), OPENED) == 17


# --------------------------------------------------------------------------- kill under load


def load(rng: random.Random, count: int, start: int) -> list[Envelope]:
    """Opened, met and missed decisions of `count` handoffs over 16 pairs, 4 priorities."""
    out: list[Envelope] = []
    for i in range(start, start + count):
        pair = rng.choice(LOAD_PAIRS)
        priority = rng.choice(["P1", "P2", "P3", "P4"])
        out.append(b.opened(f"k{i}", *pair, priority=priority))
        for clock in ("response", "resolution"):
            kind = "met" if rng.random() < 0.8 else "missed"
            out.append(b.decision(kind, f"k{i}", *pair, priority=priority, clock=clock))
    return out


async def truth(kafka: KafkaSettings) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What the committed decisions topic says, counted here from its records."""
    counts: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()
    for record in await read_all(kafka, kafka.topics.name(Stream.DECISIONS)):
        assert record.value is not None
        envelope = Envelope.from_bytes(record.value)
        payload = envelope.payload
        assert isinstance(payload, SlaOpenedV1 | SlaDecisionV1)
        labels = {
            "from_team": payload.from_process,
            "to_team": payload.to_process,
            "priority": payload.priority.value,
        }
        if isinstance(payload, SlaDecisionV1):
            labels["milestone"] = payload.clock.value
            labels["outcome"] = envelope.event_type.removeprefix("sla.")
            counts[(OUTCOMES, frozenset(labels.items()))] += 1
        else:
            counts[(OPENED, frozenset(labels.items()))] += 1
    return dict(counts)


async def exposed(process: ServiceProcess) -> Samples:
    async with httpx.AsyncClient(base_url=process.url, headers=b.AUTH, timeout=5) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s for f in parse_text(response.text)
            for s in f.samples}  # fmt: skip


def counters(samples: Samples) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The opened and outcome counters exposed (zeros left out: a missed never seen is 0)."""
    return {k: float(s.value) for k, s in samples.items() if k[0] in (OPENED, OUTCOMES) and s.value}


async def test_sigkill_under_load_leaves_zero_drift_against_the_decisions_topic(
    kafka: KafkaSettings,
) -> None:
    await write_records(
        kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(b.process_map(LOAD_PAIRS)))]
    )
    metrics = ServiceProcess("metrics.main", service_env("METRICS_", kafka), "metrics-kill")
    rng = random.Random(7)
    batches = [load(rng, 150, i * 150) for i in range(16)]  # 2,400 handoffs, 7,200 decisions
    published = asyncio.Event()

    async def publisher() -> None:
        for batch in batches:
            await publish(kafka, Stream.DECISIONS, batch)
            await asyncio.sleep(0.05)
        published.set()

    metrics.start()
    try:
        await metrics.ready()
        sending = asyncio.create_task(publisher())
        last_seen = 0.0
        for kill in range(2):  # SIGKILL twice while decisions keep arriving

            async def counting(more_than: float = last_seen) -> float | None:
                seen = total(await exposed(metrics), OPENED)
                return seen if seen > more_than else None

            last_seen = await wait_for(counting, within=60, what=f"counts before kill {kill}")
            metrics.kill()
            metrics.start()
            await metrics.ready()
            restored = total(await exposed(metrics), OPENED)
            assert restored >= last_seen  # continued from the changelog, never reset
        await sending
        expected = await truth(kafka)
        assert sum(v for (name, _), v in expected.items() if name == OPENED) == 16 * 150

        async def converged() -> dict[Any, float] | None:
            seen = counters(await exposed(metrics))
            return seen if seen == expected else None

        with contextlib.suppress(AssertionError):
            await wait_for(converged, within=60, what="every decision counted")
        assert counters(await exposed(metrics)) == expected  # zero drift, per series
    finally:
        metrics.kill()
