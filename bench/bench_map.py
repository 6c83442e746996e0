"""Process maps the size of a real organisation: parse + validate + publish, and reading back.

    .venv/bin/python bench/bench_map.py [--routes 10000 ...]

Maps are generated (exact routes, four priorities each, no YAML anchors: the worst case for
the loader; 2,463 routes between 649 teams, as the BPI Challenge 2013 log needs without
default routes; 10,000 routes; and the BPI map with default routes if the log is there) and
timed through what routing does at start-up or on a reload:
parse the YAML and check it (what POST /v1/map/validate runs), version the standards against
nothing, publish it on a real broker (port 19492, or BATON_BENCH_BOOTSTRAP) in compressed
parts and wait for acks=all; then what every reader does: read the topic to its end and
assemble the map (routing's restart, intake's door, metrics' catalog), and metrics' catalog.
Prints the figures, per route too, to show the cost grows linearly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from builders import scale_map_yaml  # noqa: E402
from metrics.domain.catalog import Catalog  # noqa: E402
from routing.__main__ import bpi_log  # noqa: E402
from routing.adapters.bpi import bpi_map_yaml, read_teams  # noqa: E402
from routing.adapters.kafka import MapTopic  # noqa: E402
from routing.adapters.mapfile import load_yaml, parse_map_text  # noqa: E402
from routing.domain.versioning import next_map  # noqa: E402
from shared.kafka import Publisher, ensure_topics, read_table  # noqa: E402
from shared.mapwire import current_map  # noqa: E402
from shared.settings import KafkaSettings  # noqa: E402
from support import Broker, fresh_settings  # noqa: E402


def timed(what: str, started: float, routes: int) -> float:
    took = time.perf_counter() - started
    print(f"  {what:<34} {took * 1000:8.0f} ms  ({took / routes * 1e6:6.0f} us/route)")
    return took


async def one(kafka: KafkaSettings, title: str, text: str) -> None:
    document, _ = load_yaml(text)
    routes = len(document["routes"])
    print(f"{title}: YAML {len(text) / 1e6:.2f} MB, {sum(1 for _ in _walk(document))} YAML values")
    total = 0.0
    started = time.perf_counter()
    draft = parse_map_text(text)
    total += timed("parse + validate (YAML -> draft)", started, routes)
    started = time.perf_counter()
    pmap = next_map(draft, None, now=datetime.now(UTC), source="bench").map
    total += timed("version the standards", started, routes)
    publisher = Publisher(kafka, client_id="bench-map")
    await publisher.start(wait=True)
    store = MapTopic(kafka, publisher)
    try:
        manifest = store.encode(pmap)
        started = time.perf_counter()
        await store.publish(pmap)
        total += timed("publish (encode, send, acks=all)", started, routes)
    finally:
        await publisher.stop()
    print(
        f"  -> {manifest.size / 1e6:.2f} MB of JSON, {manifest.compressed / 1e3:.0f} KB "
        f"compressed, {manifest.parts} part(s)"
    )
    print(f"  {'parse + validate + publish':<34} {total * 1000:8.0f} ms")
    started = time.perf_counter()
    table = await read_table(kafka, store.topic)
    back = current_map(table)
    timed("a reader: read topic + assemble", started, routes)
    assert back is not None and back.version == pmap.version
    started = time.perf_counter()
    catalog = Catalog.from_map(back)
    timed("metrics' catalog from the map", started, routes)
    print(f"  -> metrics pre-initialises {len(catalog.pairs)} listed pairs")


def _walk(value: object) -> object:
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, nargs="*", default=[10_000])
    args = parser.parse_args()
    maps = [
        # The BPI Challenge 2013 log written with one route per pair: 649 teams, 2,463 routes.
        ("2463 exact routes, 649 teams, 4 priorities", scale_map_yaml(2463, processes=649, kinds=1))
    ]
    maps += [(f"{n} exact routes, 4 priorities", scale_map_yaml(n)) for n in args.routes]
    log = bpi_log()
    if log.exists():
        maps.append(("BPI 2013 with default routes (649)", bpi_map_yaml(read_teams(log))))
    bootstrap = os.environ.get("BATON_BENCH_BOOTSTRAP")
    broker = None
    if bootstrap is None:
        broker = Broker(19492, "bench")
        broker.clean()
        broker.start()
        bootstrap = broker.bootstrap
    try:
        for title, text in maps:
            kafka = fresh_settings(bootstrap, partitions=1)
            await ensure_topics(kafka)
            await one(kafka, title, text)
    finally:
        if broker is not None:
            broker.clean()


if __name__ == "__main__":
    asyncio.run(main())
