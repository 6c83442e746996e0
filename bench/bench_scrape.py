"""Series, bytes and scrape time of the metrics service's `/metrics` for a 2,500-pair map after
traffic on every pair, with one instance and with two (shards).

No Kafka: builds the service the way metrics/main.py wires it, hands it decisions and
lifecycle events through its use case (handle, prepare, committed: what a transaction does),
fills the status table through its table callback, then renders `/metrics`
(Exposition.render, as the route calls it).

    .venv/bin/python bench/bench_scrape.py [--pairs 2500] [--teams 650] [--scrapes 20]

Traffic: every pair of a BPI-Challenge-2013-shaped map (650 teams, random supplier->customer
pairs, response and resolution targets at four priorities) sees handoffs at as many priorities
as the BPI 2013 pairs did (82 % one, 16 % two, 2 % three, 0.2 % four): opened, met or missed
on both clocks, both clocks stopped, open handoffs with a quarter of their clocks overdue;
a fifth of the pairs also see rework and ratings.

Scenarios: cold = every pair's tally changed since the previous scrape; steady = 1 % of the
pairs changed (a busy system, 15 s scrapes).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "services")]

from prometheus_client import CollectorRegistry, disable_created_metrics  # noqa: E402

from metrics.adapters.exposition import Exposition  # noqa: E402
from metrics.adapters.instruments import CatalogGauges, Instruments, StateGauges  # noqa: E402
from metrics.domain.catalog import PRIORITIES, Pair  # noqa: E402
from metrics.domain.pairs import PairMemory  # noqa: E402
from metrics.domain.shards import Shard  # noqa: E402
from metrics.domain.status import StateView, StatusBoard  # noqa: E402
from metrics.handlers import MetricsService  # noqa: E402
from shared.clock import FakeClock  # noqa: E402
from shared.contracts import ProcessMapV1  # noqa: E402
from shared.events import Envelope, HandoffStatusV1  # noqa: E402
from shared.kafka import ProcessedCounter  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
import builders as b  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SOURCE = ("sla.decisions.v1", 0)
PRIORITY_MIX = ((1, 0.82), (2, 0.16), (3, 0.018), (4, 0.002))


def process_map(pairs: list[Pair], teams: list[str]) -> ProcessMapV1:
    targets = {
        p: {"response": f"{i + 1}h", "resolution": f"{8 * (i + 1)}h"}
        for i, p in enumerate(PRIORITIES)
    }
    return ProcessMapV1.model_validate(
        {
            "version": 1,
            "published_at": NOW,
            "calendars": [{"id": "always", "always_open": True}],
            "processes": [{"id": t, "name": t, "calendar": "always"} for t in teams],
            "routes": [
                {
                    "id": f"route-{i}",
                    "from": f,
                    "kind": "work",
                    "to": t,
                    "standard": {
                        "route_id": f"route-{i}",
                        "version": 1,
                        "calendar": {"id": "always", "always_open": True},
                        "targets": targets,
                        "objective": 0.95,
                    },
                }
                for i, (f, t) in enumerate(pairs)
            ],
        }
    )


def random_pairs(rng: random.Random, count: int, teams: list[str]) -> list[Pair]:
    pairs: set[Pair] = set()
    while len(pairs) < count:
        f, t = rng.sample(teams, 2)
        pairs.add((f, t))
    return sorted(pairs)


def traffic(rng: random.Random, pairs: list[Pair]) -> tuple[list[Envelope], list[HandoffStatusV1]]:
    """Events and open status rows: every pair at its BPI-like number of priorities."""
    events: list[Envelope] = []
    rows: list[HandoffStatusV1] = []
    weights = [w for _, w in PRIORITY_MIX]
    for n, (f, t) in enumerate(pairs):
        (count,) = rng.choices([c for c, _ in PRIORITY_MIX], weights)
        for p in rng.sample(PRIORITIES, count):
            for k in range(4):
                h = f"h{n}-{p}-{k}"
                events.append(b.opened(h, f, t, priority=p))
                for clock in ("response", "resolution"):
                    outcome = "met" if rng.random() < 0.9 else "missed"
                    events.append(b.decision(outcome, h, f, t, priority=p, clock=clock))
                    events.append(
                        b.decision(
                            "stopped", h, f, t, priority=p, clock=clock,
                            elapsed_wall=rng.uniform(60, 86400 * 5),
                            elapsed_business=rng.uniform(60, 86400),
                            target_seconds=3600,
                        )
                    )  # fmt: skip
            deadline = NOW + timedelta(hours=rng.uniform(-12, 36))
            rows.append(
                b.status(
                    f, t, priority=p,
                    clocks=[(c, "running", None, deadline) for c in ("response", "resolution")],
                )
            )  # fmt: skip
        if rng.random() < 0.2:
            h = f"h{n}-rated"
            events += [b.submitted(h, f, t), b.rejected(h), b.rated(h, rng.randint(1, 5))]
    return events, rows


@dataclass
class Instance:
    service: MetricsService
    exposition: Exposition


def instance(pmap: ProcessMapV1, shard: Shard) -> Instance:
    """One metrics instance, wired as metrics/main.py wires it."""
    registry = CollectorRegistry()
    processed = ProcessedCounter(registry)
    instruments = Instruments()
    board = StatusBoard()
    service = MetricsService(
        instruments,
        board,
        PairMemory(1_000_000),
        processed,
        shard=shard,
        changelog_topic="metrics.state.v1",
        map_topic="routing.processmap.v1",
        status_topic="sla.status.v1",
    )
    service.on_process_map(b"current", b.map_bytes(pmap))
    state = StateGauges(StateView(board), lambda: service.catalog, FakeClock(NOW))
    targets = CatalogGauges(
        lambda: service.catalog, shard, lambda: instruments.in_use.union(board.open_keys())
    )
    sources = [instruments.render, state.render, targets.render]
    return Instance(service, Exposition(registry, sources))


def feed(inst: Instance, events: list[Envelope], rows: list[HandoffStatusV1]) -> None:
    svc = inst.service
    for i, row in enumerate(rows):
        svc.on_status(f"open-{i}".encode(), b.status_bytes(row))
    for start in range(0, len(events), 500):  # one transaction per fetch of 500
        for event in events[start : start + 500]:
            svc.handle(event, SOURCE)
        svc.prepare()
        svc.committed()


def sample_lines(body: bytes) -> list[str]:
    return [line for line in body.decode().splitlines() if line and not line.startswith("#")]


def pair_of_line(line: str) -> Pair | None:
    if 'from_team="' not in line:
        return None
    f = line.split('from_team="', 1)[1].split('"', 1)[0]
    t = line.split('to_team="', 1)[1].split('"', 1)[0]
    return f, t


def timed(render: Callable[[], object], runs: int, before: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        render()
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, values: list[float]) -> None:
    print(
        f"  {name:<28} p50 {statistics.median(values):7.1f} ms   p99 {pct(values, 0.99):7.1f} ms"
        f"   max {max(values):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2500)
    parser.add_argument("--teams", type=int, default=650)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as the service does
    rng = random.Random(42)
    teams = [f"team-{i:03d}" for i in range(args.teams)]
    pairs = random_pairs(rng, args.pairs, teams)
    pmap = process_map(pairs, teams)
    events, rows = traffic(rng, pairs)
    print(
        f"{len(pairs):,} pairs over {len(teams)} teams; {len(events):,} events and "
        f"{len(rows):,} open handoffs (a quarter overdue), traffic on every pair"
    )

    one = instance(pmap, Shard())
    started = time.perf_counter()
    feed(one, events, rows)
    print(f"handled and committed in {time.perf_counter() - started:.1f} s")
    text, om = one.exposition.render(False), one.exposition.render(True)
    lines = sample_lines(text)
    per_pair: dict[Pair, int] = {}
    for line in lines:
        pair = pair_of_line(line)
        if pair is not None:
            per_pair[pair] = per_pair.get(pair, 0) + 1
    counts = sorted(per_pair.values())
    print(
        f"one instance: {len(lines):,} samples per scrape, {len(text) / 1e6:.2f} MB text, "
        f"{len(om) / 1e6:.2f} MB OpenMetrics"
    )
    print(
        f"  series per pair: mean {statistics.mean(counts):.1f}, median "
        f"{statistics.median(counts)}, max {counts[-1]} (budget 40 at one priority, +9 to 13 "
        "per further priority)"
    )

    shards = [instance(pmap, Shard(i, 2)) for i in range(2)]
    for inst in shards:
        feed(inst, events, rows)
    bodies = [inst.exposition.render(False) for inst in shards]
    seen = [set(sample_lines(body)) for body in bodies]
    pair_lines = [{line for line in s if pair_of_line(line)} for s in seen]
    both = pair_lines[0] & pair_lines[1]
    split = ", ".join(f"{len(sample_lines(body)):,}" for body in bodies)
    total = sum(len(sample_lines(body)) for body in bodies)
    print(
        f"two instances: {total:,} samples in all ({split}), "
        f"{sum(len(body) for body in bodies) / 1e6:.2f} MB text; pair series exposed by both: "
        f"{len(both)}; pair series of one instance missing from the two: "
        f"{len({x for x in lines if pair_of_line(x)} - pair_lines[0] - pair_lines[1])}"
    )

    svc = one.service
    extra = iter(range(10**9))

    def touch(share: float) -> Callable[[], None]:
        def run() -> None:
            for f, t in pairs:
                if rng.random() < share:
                    svc.handle(b.opened(f"x{next(extra)}", f, t, priority="P3"), SOURCE)
            svc.prepare()
            svc.committed()

        return run

    print(f"scrape time over {args.scrapes} scrapes (one instance, Exposition.render):")
    for fmt, om_flag in (("text", False), ("OpenMetrics", True)):
        render = (lambda flag: lambda: one.exposition.render(flag))(om_flag)
        report(f"cold, {fmt}", timed(render, args.scrapes, touch(1.0)))
        report(f"steady, {fmt}", timed(render, args.scrapes, touch(0.01)))


if __name__ == "__main__":
    main()
