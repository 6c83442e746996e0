"""What the generated ops files cost for a large map: generation time, rule and receiver
counts, file sizes, and promtool's / amtool's check time.

    .venv/bin/python bench/bench_ops.py [--pairs 2500] [--teams 120]

The rule count grows with the map by one constant series per pair and milestone (the alerting
policy); the arithmetic rules stay the same whatever the number of pairs.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "services")]

from metrics.adapters.opsfiles import render, write_files  # noqa: E402
from metrics.domain.ops.generate import documents  # noqa: E402
from metrics.domain.ops.settings import OpsSettings  # noqa: E402
from shared.contracts import (  # noqa: E402
    CalendarV1,
    ContactV1,
    ProcessMapV1,
    ProcessV1,
    RouteSpecV1,
    ServiceStandardV1,
)

PRIORITIES = ("P1", "P2", "P3", "P4")


def big_map(pairs: int, teams: int, seed: int = 7) -> ProcessMapV1:
    rng = random.Random(seed)
    office = CalendarV1(id="office", timezone="Europe/Brussels",
                        hours={"mon-fri": ("08:30-12:00", "13:00-17:30")})  # fmt: skip
    ids = [f"team-{i:03d}" for i in range(teams)]
    processes = tuple(
        ProcessV1(id=t, name=t, calendar="office",
                  owner=ContactV1(name=t, email=f"{t}@example.org"),
                  escalation=(ContactV1(name="boss", email=f"boss-{t}@example.org"),))
        for t in ids
    )  # fmt: skip
    chosen: set[tuple[str, str]] = set()
    while len(chosen) < pairs:
        f, t = rng.sample(ids, 2)
        chosen.add((f, t))
    routes = []
    for n, (f, t) in enumerate(sorted(chosen)):
        standard = ServiceStandardV1.model_validate({
            "route_id": f"r{n}", "version": 1, "calendar": office,
            "targets": {p: {"response": "1h", "resolution": "8h"} for p in PRIORITIES},
            "delivery": "16h" if n % 3 == 0 else None,
        })  # fmt: skip
        routes.append(
            RouteSpecV1.model_validate(
                {"id": f"r{n}", "from": f, "kind": "work", "to": t, "standard": standard}
            )
        )
    return ProcessMapV1(version=1, published_at=datetime(2026, 1, 1, tzinfo=UTC),
                        calendars=(office,), processes=processes, routes=tuple(routes))  # fmt: skip


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2500)
    parser.add_argument("--teams", type=int, default=120)
    args = parser.parse_args()
    pmap = big_map(args.pairs, args.teams)
    started = time.perf_counter()
    docs = documents(pmap, OpsSettings(holiday_years=(2026, 2027)))
    texts = render(docs, "python -m metrics.ops generate (bench)")
    generated = time.perf_counter() - started
    rules = [r for name, d in docs.items() if name.startswith("prometheus/")
             for g in d["groups"] for r in g["rules"]]  # fmt: skip
    policy = sum(1 for r in rules if r.get("record") == "pair_milestone:handoff_slo:policy")
    am = docs["alertmanager/alertmanager.yml"]
    print(f"map: {args.pairs} pairs, {args.teams} teams, {len(pmap.routes)} routes")
    print(f"generation: {generated:.2f} s for {len(texts)} files")
    print(f"rules: {len(rules)} ({policy} policy constants, {len(rules) - policy} generic)")
    print(f"alertmanager: {len(am['receivers'])} receivers, {len(am['route']['routes'])} "
          f"top-level routes, {len(am['time_intervals'])} time intervals")  # fmt: skip
    for path, text in texts.items():
        if not path.startswith("grafana/dashboards"):
            print(f"  {path}: {len(text.encode()) / 1024:.0f} KiB")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_files(out, texts)
        promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
        if promtool and amtool:
            rule_files = [str(p) for p in (out / "prometheus" / "rules").glob("*.yml")]
            print(
                f"promtool check rules --lint=all: "
                f"{timed([promtool, 'check', 'rules', '--lint=all', *rule_files]):.2f} s"
            )
            config = str(out / "alertmanager" / "alertmanager.yml")
            print(f"amtool check-config: {timed([amtool, 'check-config', config]):.2f} s")
        else:
            print("(promtool/amtool not installed: checks skipped; run make deps)")


if __name__ == "__main__":
    main()
