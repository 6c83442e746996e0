"""Scrape cost of the metrics service's `/metrics` with 200 supplier->customer pairs.

No Kafka: builds the catalog, the status board and the families directly, the way the service
wires them, then times the `/metrics` body (Exposition.render, as the route calls it).

    .venv/bin/python bench/bench_scrape.py [--pairs 200] [--handoffs 100000] [--scrapes 20]

Scenarios:
- cold: every label set changed since the last scrape (the worst case: all re-rendered);
- steady: 1 % of the label sets changed since the last scrape (a busy system, 15 s scrapes);
- client_python: the same families through a plain CollectorRegistry + generate_latest (baseline).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "services")]

from prometheus_client import CollectorRegistry, disable_created_metrics  # noqa: E402
from prometheus_client import generate_latest as client_generate  # noqa: E402
from prometheus_client.metrics_core import Metric  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

from metrics.adapters.exposition import Exposition  # noqa: E402
from metrics.adapters.instruments import CatalogGauges, Instruments, StateGauges  # noqa: E402
from metrics.domain.catalog import OUTCOMES, PRIORITIES, Catalog  # noqa: E402
from metrics.domain.effects import Exemplar  # noqa: E402
from metrics.domain.status import StateView, StatusBoard  # noqa: E402
from shared.clock import FakeClock  # noqa: E402
from shared.contracts import ProcessMapV1  # noqa: E402
from shared.events import HandoffStatusV1  # noqa: E402
from shared.kafka import ProcessedCounter  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def process_map(pairs: int, delivery: bool = True) -> ProcessMapV1:
    """A map of `pairs` routes sup-i -> cust-i, every priority with response and resolution
    targets (and a delivery target when asked): the worst case for series per pair."""
    targets = {
        p: {"response": f"{i + 1}h", "resolution": f"{8 * (i + 1)}h"}
        for i, p in enumerate(PRIORITIES)
    }
    return ProcessMapV1.model_validate(
        {
            "version": 1,
            "published_at": NOW,
            "calendars": [{"id": "always", "always_open": True}],
            "processes": [
                {"id": f"{side}-{i:03d}", "name": f"{side} {i}", "calendar": "always"}
                for i in range(pairs)
                for side in ("sup", "cust")
            ],
            "routes": [
                {
                    "id": f"route-{i:03d}",
                    "from": f"sup-{i:03d}",
                    "kind": "order",
                    "to": f"cust-{i:03d}",
                    "standard": {
                        "route_id": f"route-{i:03d}",
                        "version": 1,
                        "calendar": {"id": "always", "always_open": True},
                        "targets": targets,
                        "delivery": "24h" if delivery else None,
                        "objective": 0.95,
                    },
                }
                for i in range(pairs)
            ],
        }
    )


def status_row(rng: random.Random, catalog: Catalog) -> HandoffStatusV1:
    """An open handoff of a random pair with running response and resolution clocks whose
    deadlines spread over two days around now (a quarter of them overdue)."""
    f, t = rng.choice(catalog.pairs)
    started = NOW - timedelta(hours=rng.uniform(0, 48))
    clocks = [
        {
            "clock": clock,
            "cycle": 1,
            "stage": "running",
            "outcome": None,
            "started_at": started,
            "deadline": NOW + timedelta(hours=rng.uniform(-12, 36)),
            "stopped_at": None,
            "target_seconds": 3600.0,
        }
        for clock in ("response", "resolution")
    ]
    return HandoffStatusV1.model_validate(
        {
            "case_id": "case",
            "kind": "order",
            "from": f,
            "to": t,
            "priority": rng.choice(PRIORITIES),
            "state": "open",
            "route_id": "route",
            "standard_version": 1,
            "clocks": clocks,
            "as_of": NOW,
        }
    )


def touch(instruments: Instruments, catalog: Catalog, rng: random.Random, share: float) -> None:
    """Move a share of every family's label sets (1.0 = all of them)."""
    for combo in catalog.combos:
        if rng.random() >= share:
            continue
        exemplar = Exemplar(f"h-{rng.randrange(10**9)}", NOW.timestamp())
        instruments.duration.observe(combo, rng.uniform(0, 10 * 86400), exemplar)
        instruments.usage.observe(combo, rng.uniform(0, 3), exemplar)
        for outcome in OUTCOMES:
            instruments.outcomes.inc((*combo, outcome))
            instruments.retractions.inc((*combo, outcome))
    for key in catalog.pair_priorities():
        if rng.random() < share:
            instruments.opened.inc(key)
    for pair in catalog.pairs:
        if rng.random() < share:
            instruments.rework.inc(pair)
            instruments.satisfaction.observe(pair, rng.randint(1, 5), Exemplar("h-1", 0.0))


def series(body: bytes) -> list[str]:
    """The sample lines of an exposition."""
    return [line for line in body.decode().splitlines() if line and not line.startswith("#")]


def timed(
    render: Callable[[], object], runs: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Milliseconds of `runs` calls of `render`, each after `before` (not timed)."""
    out = []
    for _ in range(runs):
        if before is not None:
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
        f"  {name:<34} p50 {statistics.median(values):7.1f} ms   p99 {pct(values, 0.99):7.1f} ms"
        f"   max {max(values):7.1f} ms"
    )


def per_pair(body: bytes, pair: tuple[str, str]) -> int:
    marker = f'from_team="{pair[0]}",to_team="{pair[1]}"'
    return sum(1 for line in series(body) if marker in line)


@dataclass
class Setup:
    exposition: Exposition
    instruments: Instruments
    catalog: Catalog
    index_seconds: float


def build(pairs: int, handoffs: int, delivery: bool, rng: random.Random) -> Setup:
    """The service's families, board and exposition, filled like a busy deployment."""
    catalog = Catalog.from_map(process_map(pairs, delivery))
    instruments = Instruments()
    instruments.preinitialise(catalog)
    board = StatusBoard()
    started = time.perf_counter()
    for i in range(handoffs):
        board.put(f"h-{i}", status_row(rng, catalog))
    build_s = time.perf_counter() - started
    registry = CollectorRegistry()
    ProcessedCounter(registry).inc("sla.decisions.v1", "sla.met", "ok")
    state = StateGauges(StateView(board), lambda: catalog, FakeClock(NOW))
    targets = CatalogGauges(lambda: catalog)
    exposition = Exposition(registry, [instruments.render, state.render, targets.render])
    touch(instruments, catalog, rng, 1.0)
    return Setup(exposition, instruments, catalog, build_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--handoffs", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # as the service does
    rng = random.Random(42)

    setup = build(args.pairs, args.handoffs, True, rng)
    exposition, instruments, catalog = setup.exposition, setup.instruments, setup.catalog
    text = exposition.render(openmetrics=False)
    om = exposition.render(openmetrics=True)
    print(
        f"{args.pairs} pairs, {args.handoffs:,} open handoffs in the status table "
        f"(indexed in {setup.index_seconds:.1f} s), {len(catalog.combos)} "
        "(pair, priority, milestone) combinations, every label set filled"
    )
    print(
        f"series exposed: {len(series(text)):,} (text), {len(series(om)):,} (OpenMetrics); "
        f"body {len(text) / 1e6:.1f} MB text, {len(om) / 1e6:.1f} MB OpenMetrics"
    )

    def dirty_all() -> None:
        touch(instruments, catalog, rng, 1.0)

    def dirty_some() -> None:
        touch(instruments, catalog, rng, 0.01)

    def scrape(openmetrics: bool) -> Callable[[], object]:
        return lambda: exposition.render(openmetrics)

    print(
        f"scrape time over {args.scrapes} scrapes (Exposition.render, as /metrics calls it); "
        "cold = every label set changed since the previous scrape, steady = 1 % changed:"
    )
    for fmt, om_flag in (("text", False), ("OpenMetrics", True)):
        report(f"cold, {fmt}", timed(scrape(om_flag), args.scrapes, dirty_all))
        report(f"steady, {fmt}", timed(scrape(om_flag), args.scrapes, dirty_some))

    baseline = CollectorRegistry()

    class Families(Collector):
        def collect(self) -> Iterator[Metric]:
            for family in instruments.families:
                yield from family.collect()

    baseline.register(Families())
    report("client_python generate_latest, text", timed(lambda: client_generate(baseline), 3))

    worst = per_pair(text, catalog.pairs[0])
    small = build(1, 100, False, random.Random(1))
    typical = per_pair(small.exposition.render(False), small.catalog.pairs[0])
    print(
        f"series per pair: {worst} with delivery+response+resolution targets at 4 priorities; "
        f"{typical} with response+resolution only (budget: about 300)"
    )


if __name__ == "__main__":
    main()
