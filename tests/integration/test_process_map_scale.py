"""A process map the size of a real organisation on the real broker: 10,000 routes with four
priorities each are published in parts under 1 MiB, applied by routing, intake's door and
metrics' catalog, reloaded without a restart, and read back as history."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

import builders as b
from intake.adapters.kafka import MapTable
from metrics.domain.pairs import PairMemory
from metrics.domain.shards import Shard
from metrics.domain.status import StatusBoard
from metrics.handlers import MetricsService
from routing.main import create_app
from routing.settings import Settings
from shared.events import HandoffSubmittedV1
from shared.kafka import ProcessedCounter, TableReader
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import read_all, wait_for

ROUTES = 10_000
PART_BYTES = 64 * 1024  # the 10,000-route map compresses to ~100 KB: several parts


class Unexposed:
    """metrics' exposed families, standing in (this test reads the catalog only)."""

    def load(self, tally: object) -> None:
        pass

    def exemplify(self, effects: object) -> None:
        pass


def opening(origin: str, kind: str, to: str | None = None) -> HandoffSubmittedV1:
    return HandoffSubmittedV1.model_validate(
        {"case_id": "c", "kind": kind, "from": origin, "to": to, "priority": "P4"}
    )


async def test_a_10000_route_map_is_published_in_parts_and_applied_by_every_reader(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    path = tmp_path / "process-map.yaml"
    path.write_text(b.scale_map_yaml(ROUTES))
    settings = Settings(
        kafka=kafka,
        process_map=path,
        api_keys=b.ADMIN_KEYS,
        map_part_bytes=PART_BYTES,
        map_revision="4f2a9c1",
        map_author="ci",
    )
    door = MapTable(kafka)
    metrics = MetricsService(
        Unexposed(),
        StatusBoard(),
        PairMemory(10),
        ProcessedCounter(CollectorRegistry()),
        shard=Shard(),
        changelog_topic=kafka.topics.name(Stream.METRICS_STATE),
        map_topic=kafka.topics.name(Stream.PROCESS_MAP),
        status_topic=kafka.topics.name(Stream.STATUS),
    )
    catalog_reader = TableReader(
        kafka, [kafka.topics.name(Stream.PROCESS_MAP)], metrics.on_process_map
    )
    app = create_app(settings)
    await door.reader.start()
    await catalog_reader.start()
    try:
        async with app.router.lifespan_context(app):
            await wait_for(lambda: app.state.maps.loaded, within=120.0, what="routing's map")
            routing_map = app.state.maps.current
            assert routing_map.version == 1 and len(routing_map.routes) == ROUTES
            assert {len(r.standard.targets) for r in routing_map.routes} == {4}

            await wait_for(lambda: door.map is not None, within=60.0, what="intake's map")
            await wait_for(lambda: metrics.catalog.version == 1, within=60.0, what="metrics")
            assert door.map == routing_map
            assert door.router is not None
            last = routing_map.routes[-1]
            routed = door.router.resolve(opening(last.from_process, last.kind, last.to_process))
            assert routed.standard.route_id == last.id
            assert len(metrics.catalog.pairs) == len(
                {(r.from_process, r.to_process) for r in routing_map.routes}
            )

            records = await read_all(kafka, kafka.topics.name(Stream.PROCESS_MAP))
            parts = [r for r in records if r.key.startswith(b"map/")]
            assert len(parts) >= 2
            assert max(len(r.value) for r in records) <= PART_BYTES
            assert [r.key for r in records[-2:]] == [b"version/0000000001", b"current"]

            # A change, applied without a restart: every reader follows.
            # Every tenth route's P1 response target: 14m -> 13m.
            text = path.read_text()
            path.write_text(text.replace("P1: {response: 14m,", "P1: {response: 13m,"))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://r", headers=b.AUTH
            ) as client:
                reloaded = await client.post("/v1/map/reload", timeout=120.0)
                assert reloaded.status_code == 200, reloaded.text
                body = reloaded.json()
                assert body["version"] == 2
                assert body["changes"]["changed"] == ROUTES // 10
                assert body["revision"] == "4f2a9c1" and body["author"] == "ci"
                await wait_for(
                    lambda: door.map is not None and door.map.version == 2,
                    within=60.0,
                    what="intake to apply version 2",
                )
                await wait_for(lambda: metrics.catalog.version == 2, within=60.0, what="metrics v2")

                history = (await client.get("/v1/routes/r00009/versions", timeout=60.0)).json()
                assert [v["version"] for v in history["versions"]] == [1, 2]
                assert history["versions"][0]["route"]["standard"]["targets"]["P1"] == {
                    "response": "14m",
                    "resolution": "4h",
                }
                versions = (await client.get("/v1/map/versions")).json()["versions"]
                assert [v["version"] for v in versions] == [2, 1]
                assert versions[1]["routes"] == ROUTES and versions[1]["parts"] >= 2

        # A restart with the same file reads the map back from its parts: nothing to publish.
        again = create_app(settings)
        async with again.router.lifespan_context(again):
            await wait_for(lambda: again.state.maps.loaded, within=120.0, what="the restart")
            assert again.state.maps.current.version == 2
        records = await read_all(kafka, kafka.topics.name(Stream.PROCESS_MAP))
        assert sum(1 for r in records if r.key == b"current") == 2
    finally:
        await door.reader.stop()
        await catalog_reader.stop()
