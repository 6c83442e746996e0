"""The whole BPI Challenge 2013 incident log imported and decided end to end.

    .venv/bin/python bench/bench_import.py [LOG]    (default ../shared/datasets/VINST-new.csv)

The four services run as processes with the map `python -m routing generate-bpi` writes for
the log (649 teams), against a real broker (port 19492, or BATON_BENCH_BOOTSTRAP). Timed from
reading the log to the moment metrics counts an outcome for every clock of every imported
handoff (sla decided them all in stream time, metrics caught up): what `baton import` does
(read, derive, post in batches of 1000 through POST /v1/events), then the pipeline. Prints
seconds and events/s (target <= 60 s, aim <= 15 s), and the outcomes and retractions seen.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

import httpx  # noqa: E402

from baton import importer  # noqa: E402
from baton.client import Client, Urls  # noqa: E402
from baton.eventlog import Mapping  # noqa: E402
from builders import TEST_KEY  # noqa: E402
from routing.__main__ import bpi_log  # noqa: E402
from routing.adapters.bpi import bpi_map_yaml, read_teams  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from support import ServiceProcess, bench_broker, fresh_settings, service_env  # noqa: E402


def totals(text: str) -> tuple[float, float]:
    """(outcomes, retractions) summed over every series of metrics' exposition."""
    outcomes = retractions = 0.0
    for line in text.splitlines():
        if line.startswith("handoff_target_outcomes_total{"):
            outcomes += float(line.rsplit(" ", 1)[1])
        elif line.startswith("handoff_target_retractions_total{"):
            retractions += float(line.rsplit(" ", 1)[1])
    return outcomes, retractions


async def run(log: Path, bootstrap: str) -> None:
    kafka = fresh_settings(bootstrap, partitions=6)
    await ensure_topics(kafka)
    map_file = REPO / ".run" / "bench-bpi-map.yaml"
    map_file.parent.mkdir(parents=True, exist_ok=True)
    map_file.write_text(bpi_map_yaml(read_teams(log), log.name), encoding="utf-8")
    env = {
        "intake": {**service_env("INTAKE_", kafka), "INTAKE_LOG_LEVEL": "WARNING"},
        "routing": {**service_env("ROUTING_", kafka), "ROUTING_PROCESS_MAP": str(map_file)},
        "sla": service_env("SLA_", kafka),
        "metrics": service_env("METRICS_", kafka),
    }
    procs = {n: ServiceProcess(f"{n}.main", e, f"bench-import-{n}") for n, e in env.items()}
    for proc in procs.values():
        proc.start()
    try:
        await asyncio.gather(*(p.ready(within=120) for p in procs.values()))
        urls = Urls(**{name: proc.url for name, proc in procs.items()})
        print(
            f"system: 4 services + broker + importer on {os.cpu_count()} cores, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; log {log.name}"
        )
        state = REPO / ".run" / "bench-import-state.json"
        state.unlink(missing_ok=True)
        started = time.perf_counter()
        planned = importer.plan(log, Mapping())
        read_s = time.perf_counter() - started

        def post() -> importer.Imported:
            with Client(urls, TEST_KEY, timeout=60) as client:
                return importer.run(client, planned, importer.State(state, planned))

        done = await asyncio.to_thread(post)
        posted_s = time.perf_counter() - started
        clocks = 2 * done.handoffs  # response and resolution
        outcomes = retractions = 0.0
        async with httpx.AsyncClient(timeout=10) as http:
            while time.perf_counter() - started < 600:
                outcomes, retractions = totals((await http.get(urls.metrics + "/metrics")).text)
                if outcomes - retractions >= clocks:
                    break
                await asyncio.sleep(0.25)
        total_s = time.perf_counter() - started
        print(
            f"log: {done.log_events} events, {done.handoffs} handoffs -> {done.events} "
            f"lifecycle events in {done.batches} batches"
        )
        print(f"read + derived in {read_s:.1f} s; posted (202 for every batch) at {posted_s:.1f} s")
        print(
            f"imported and decided end to end in {total_s:.1f} s: "
            f"{done.events / total_s:,.0f} events/s, {done.handoffs / total_s:,.0f} handoffs/s "
            f"(target <= 60 s, aim <= 15 s)"
        )
        print(
            f"metrics: {outcomes:.0f} outcomes for {clocks} clocks, {retractions:.0f} retractions"
        )
    finally:
        for proc in procs.values():
            proc.stop()


def main() -> int:
    log = Path(sys.argv[1]) if len(sys.argv) > 1 else bpi_log()
    if not log.exists():
        print(f"no log at {log}: give its path, or set BATON_DATASETS", file=sys.stderr)
        return 2
    with bench_broker() as bootstrap:
        asyncio.run(run(log, bootstrap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
