"""`baton import` against the running system with the BPI Challenge 2013 map: the excerpt's
handoffs reach sla, each clock decided once in event time (no breach decided against today's
clock and then retracted), and importing it again duplicates nothing."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from baton.cli import app
from baton.derive import derive
from baton.eventlog import Mapping, read_log
from e2e_system import API_KEY, System
from routing.adapters.bpi import bpi_map_yaml, read_teams
from shared.events import Envelope
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from shared.topics import Stream, Topics
from support import REPO, Broker, ServiceProcess, fresh_settings, read_all, service_env, wait_for

EXCERPT = REPO / "tests" / "data" / "bpi2013-excerpt.csv"
HANDOFFS = 115  # tests/unit/test_import.py pins it against routing's own count
runner = CliRunner()
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
async def bpi(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    kafka = fresh_settings(broker.bootstrap)
    await ensure_topics(kafka)
    map_file = tmp_path_factory.mktemp("bpi") / "bpi-map.yaml"
    map_file.write_text(bpi_map_yaml(read_teams(EXCERPT), EXCERPT.name), encoding="utf-8")
    env = {
        "intake": service_env("INTAKE_", kafka),
        "routing": {**service_env("ROUTING_", kafka), "ROUTING_PROCESS_MAP": str(map_file)},
        "sla": service_env("SLA_", kafka),
        "metrics": service_env("METRICS_", kafka),
    }
    procs = {n: ServiceProcess(f"{n}.main", e, f"e2e-import-{n}") for n, e in env.items()}
    running = System(**procs, kafka=kafka)
    for proc in running.all:
        proc.start()
    try:
        await asyncio.gather(*(p.ready() for p in running.all))
        yield running, kafka
    finally:
        for proc in running.all:
            proc.stop()


async def baton_import(system: System, state: Path, *args: str) -> dict[str, Any]:
    env = {
        "BATON_INTAKE_URL": system.intake.url,
        "BATON_SLA_URL": system.sla.url,
        "BATON_API_KEY": API_KEY,
    }
    argv = ["-o", "json", "import", str(EXCERPT), "--state", str(state), *args]
    result = await asyncio.to_thread(runner.invoke, app, argv, env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


async def closed(system: System) -> list[dict[str, Any]]:
    """Every handoff sla lists as closed (all pages)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    async with httpx.AsyncClient(base_url=system.sla.url, headers=AUTH, timeout=10) as http:
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            answer = await http.get("/v1/closed", params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            items.extend(page["items"])
            cursor = page["next"]
            if cursor is None:
                return items


async def decisions(kafka: KafkaSettings) -> list[Envelope]:
    topic = Topics(kafka.topic_prefix).name(Stream.DECISIONS)
    return [Envelope.from_bytes(r.value) for r in await read_all(kafka, topic)]


async def duplicates_seen(system: System) -> float:
    """handoff_events_processed_total{result="duplicate"} of routing and sla together."""
    total = 0.0
    async with httpx.AsyncClient(headers=AUTH, timeout=10) as http:
        for service in (system.routing, system.sla):
            text = (await http.get(service.url + "/metrics")).text
            for line in text.splitlines():
                if line.startswith("handoff_events_processed_total{") and (
                    'result="duplicate"' in line
                ):
                    total += float(line.rsplit(" ", 1)[1])
    return total


async def test_an_imported_log_is_decided_once_in_event_time_and_a_rerun_duplicates_nothing(
    bpi: tuple[System, KafkaSettings], tmp_path: Path
) -> None:
    system, kafka = bpi
    state = tmp_path / "state.json"
    first = await baton_import(system, state)
    assert (first["handoffs"], first["events"], first["posted_batches"]) == (HANDOFFS, 345, 1)

    async def all_closed() -> list[dict[str, Any]] | None:
        found = await closed(system)
        return found if len(found) >= HANDOFFS else None

    items = await wait_for(all_closed, within=60, interval=0.5, what="every handoff closed")
    assert len(items) == HANDOFFS
    assert {i["handoff_id"] for i in items} >= {"1-364285768#1", "1-364285768#2"}
    one = next(i for i in items if i["handoff_id"] == "1-364285768#1")
    assert (one["from"], one["to"], one["state"]) == ("v30", "v5-3rd", "completed")

    async def every_clock_decided() -> list[Envelope] | None:
        found = await decisions(kafka)
        counts = Counter(e.event_type for e in found)
        return found if counts["sla.met"] + counts["sla.missed"] >= 2 * HANDOFFS else None

    decided = await wait_for(every_clock_decided, within=60, interval=0.5, what="decisions")
    counts = Counter(e.event_type for e in decided)
    assert counts["sla.met"] + counts["sla.missed"] == 2 * HANDOFFS  # response + resolution
    assert counts["sla.retracted"] == 0  # no breach decided against today's clock, then undone
    assert counts["sla.missed"] > 0  # the log has late handoffs, decided as they happened:
    # each outcome is the one the log's own times give: missed exactly when the milestone
    # (accepted for response, completed for resolution) came after the deadline
    _, events = read_log(EXCERPT, Mapping())
    milestones = {
        h.handoff_id: {"response": h.accepted_at, "resolution": h.completed_at}
        for h in derive(events)
    }
    for e in decided:
        if e.event_type in ("sla.met", "sla.missed"):
            late = milestones[e.key][e.data["clock"]] > datetime.fromisoformat(e.data["deadline"])
            assert late == (e.event_type == "sla.missed"), e

    again = await baton_import(system, state)  # the state says every batch is acknowledged
    assert (again["posted_batches"], again["skipped_batches"]) == (0, 1)
    # other batches (so other Idempotency-Keys): intake publishes them, downstream drops them
    rebatched = await baton_import(system, tmp_path / "other.json", "--batch-size", "100")
    assert rebatched["posted_batches"] == 4

    async def dropped() -> bool:
        return await duplicates_seen(system) >= 345

    await wait_for(dropped, within=60, interval=0.5, what="the re-posted events seen as duplicates")
    assert len(await closed(system)) == HANDOFFS
    assert Counter(e.event_type for e in await decisions(kafka)) == counts
