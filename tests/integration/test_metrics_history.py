"""The report store end to end on the real broker: decisions and routed lifecycle events in,
reports out; a restart resumes from the positions stored in the DuckDB file (nothing lost,
nothing counted twice), a SIGKILL mid-stream too, and a deleted file is rebuilt from Kafka."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import builders as b
from metrics.main import create_app
from metrics.settings import Settings
from shared.clock import FakeClock
from shared.events import Envelope
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import ServiceProcess, service_env, wait_for
from test_metrics_service import publish, scrape, total, write_records

pytestmark = pytest.mark.kafka

T = b.T0  # Monday 2 March 2026, 09:00 UTC
MONTH = "2026-03"
SLA = "http://sla.example:8003"


def minutes(m: float) -> Any:
    return T + timedelta(minutes=m)


def first_half() -> tuple[list[Envelope], list[Envelope]]:
    """(decisions, routed events) of sales -> warehouse: six handoffs, response clocks."""
    decisions: list[Envelope] = []
    routed: list[Envelope] = []
    for i in range(6):
        h = f"sw{i}"
        decisions.append(b.opened(h, "sales", "warehouse", at=minutes(i)))
        routed.append(b.submitted(h, "sales", "warehouse", at=minutes(i)))
    for i in range(4):  # in time, 10, 20, 30, 40 minutes of business time
        h = f"sw{i}"
        spent = 600.0 * (i + 1)
        for kind in ("met", "stopped"):
            decisions.append(
                b.decision(
                    kind,
                    h,
                    "sales",
                    "warehouse",
                    clock="response",
                    at=minutes(i + 10),
                    elapsed_business=spent,
                    elapsed_wall=spent * 2,
                )
            )
    # sw4: missed at its deadline, then a late event shows it was in time: retracted, met.
    decisions.append(
        b.decision("missed", "sw4", "sales", "warehouse", clock="response", at=minutes(64))
    )
    decisions.append(
        b.decision(
            "retracted",
            "sw4",
            "sales",
            "warehouse",
            clock="response",
            at=minutes(70),
            retracted="missed",
        )
    )
    decisions.append(
        b.decision("met", "sw4", "sales", "warehouse", clock="response", at=minutes(50))
    )
    # sw5: missed, still open.
    decisions.append(
        b.decision(
            "missed",
            "sw5",
            "sales",
            "warehouse",
            clock="response",
            at=minutes(65),
            deadline=minutes(65),
        )
    )
    routed += [
        b.event("rejected", "sw0", minutes(30)),
        rejected("sw1", "wrong address", minutes(31)),
        rated("sw0", 5, "great, complete", minutes(90)),
        rated("sw1", 2, "late again", minutes(95)),
        rated("sw2", 4, None, minutes(96)),
    ]
    return decisions, routed


def second_half() -> tuple[list[Envelope], list[Envelope]]:
    """(decisions, routed events) of hr -> payroll, published while metrics is down."""
    decisions = [
        b.opened("hp0", "hr", "payroll", at=minutes(100)),
        b.opened("hp1", "hr", "payroll", at=minutes(101)),
        b.decision("met", "hp0", "hr", "payroll", clock="resolution", at=minutes(130)),
        b.decision(
            "stopped",
            "hp0",
            "hr",
            "payroll",
            clock="resolution",
            at=minutes(130),
            elapsed_business=1800,
            elapsed_wall=1800,
        ),
        b.decision(
            "missed",
            "hp1",
            "hr",
            "payroll",
            clock="resolution",
            at=minutes(161),
            deadline=minutes(161),
        ),
    ]
    routed = [
        b.submitted("hp0", "hr", "payroll", at=minutes(100)),
        b.submitted("hp1", "hr", "payroll", at=minutes(101)),
        rated("hp0", 3, "ok", minutes(140)),
    ]
    return decisions, routed


def with_data(base: Envelope, data: dict[str, Any]) -> Envelope:
    """A builder's event with other payload data (same id, time and handoff)."""
    return Envelope.model_validate({**base.model_dump(by_alias=True), "data": data})


def rejected(handoff_id: str, reason: str, at: Any) -> Envelope:
    return with_data(b.event("rejected", handoff_id, at), {"reason": reason})


def rated(handoff_id: str, rating: int, comment: str | None, at: Any) -> Envelope:
    data: dict[str, Any] = {"rating": rating}
    if comment is not None:
        data["comment"] = comment
    return with_data(b.event("rated", handoff_id, at, rating=rating), data)


async def put_map(kafka: KafkaSettings) -> None:
    process_map = b.process_map([("sales", "warehouse"), ("hr", "payroll")], objective=0.8)
    await write_records(kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(process_map))])


async def publish_all(kafka: KafkaSettings, half: tuple[list[Envelope], list[Envelope]]) -> int:
    decisions, routed = half
    await publish(kafka, Stream.DECISIONS, decisions)
    await publish(kafka, Stream.ROUTED, routed)
    return len(decisions) + len(routed)


@asynccontextmanager
async def running(
    kafka: KafkaSettings, path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = Settings(kafka=kafka, api_keys=b.ADMIN_KEYS, history_path=str(path), sla_url=SLA)
    app = create_app(settings, FakeClock(T + timedelta(days=3)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://metrics", headers=b.AUTH
        ) as client:
            yield app, client


async def report(client: httpx.AsyncClient, grouping: str = "pairs", **params: str) -> Any:
    answer = await client.get(f"/v1/reports/{grouping}", params={"month": MONTH, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def settled(client: httpx.AsyncClient, deliveries: int) -> Any:
    """The pairs report once the store read every record there is and holds `deliveries`."""

    async def probe() -> Any:
        found = await report(client)
        store = found["store"]
        have = sum(i["deliveries"] for i in found["items"])
        if store["caught_up"] and store["lag_records"] == 0 and have >= deliveries:
            return found
        return None

    result: Any = await wait_for(probe, within=30, what=f"{deliveries} deliveries stored")
    return result


def by_pair(found: Any) -> dict[tuple[str, str], Any]:
    return {(i["group"]["from"], i["group"]["to"]): i for i in found["items"]}


def check_sales_warehouse(item: Any) -> None:
    assert item["deliveries"] == 6 and item["handoffs"] == 6
    (response,) = item["milestones"]
    assert response["milestone"] == "response"
    assert (response["count"], response["met"], response["breaches"]) == (6, 5, 1)
    assert response["retractions"] == 1  # sw4's breach, withdrawn: not a breach
    assert response["on_time_ratio"] == pytest.approx(5 / 6)
    assert response["objective"] == 0.8 and response["meets_objective"] is True
    assert response["timed"] == 4
    assert response["business_seconds"]["p50"] == pytest.approx(1500.0)  # 600..2400
    assert response["wall_seconds"]["p50"] == pytest.approx(3000.0)
    assert item["rework"]["count"] == 2
    assert item["rework"]["rate"] == pytest.approx(2 / 6)
    assert {r["reason"]: r["count"] for r in item["rework"]["reasons"]} == {
        "missing details": 1,
        "wrong address": 1,
    }
    satisfaction = item["satisfaction"]
    assert satisfaction["count"] == 3 and satisfaction["mean"] == pytest.approx(11 / 3)
    assert satisfaction["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert [c["comment"] for c in satisfaction["comments"]] == ["late again", "great, complete"]
    (late,) = item["late"]
    assert late["handoff_id"] == "sw5" and late["milestone"] == "response"
    assert late["status_url"] == f"{SLA}/v1/handoffs/sw5"


async def test_reports_survive_a_restart_with_nothing_lost_and_nothing_counted_twice(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    path = tmp_path / "history.duckdb"
    await put_map(kafka)
    first = await publish_all(kafka, first_half())
    async with running(kafka, path) as (_, client):
        found = await settled(client, 6)
        check_sales_warehouse(by_pair(found)[("sales", "warehouse")])
        stored_first = total(await scrape(client), "handoff_history_records_total", result="ok")
    assert stored_first == first

    second = await publish_all(kafka, second_half())  # while metrics is down
    async with running(kafka, path) as (_, client):
        found = await settled(client, 8)
        pairs = by_pair(found)
        check_sales_warehouse(pairs[("sales", "warehouse")])  # the same, not doubled
        payroll = pairs[("hr", "payroll")]
        (resolution,) = payroll["milestones"]
        assert (resolution["count"], resolution["met"], resolution["breaches"]) == (2, 1, 1)
        assert payroll["satisfaction"]["comments"][0]["comment"] == "ok"
        # This lifetime read only what was published while it was down: it resumed from the
        # positions stored in the file, it did not re-read the topics.
        stored_second = total(await scrape(client), "handoff_history_records_total", result="ok")
        assert stored_second == second

        customers = await report(client, "customers", process="warehouse")
        (warehouse,) = customers["items"]
        assert warehouse["group"] == {"to": "warehouse"}
        assert warehouse["milestones"][0]["count"] == 6
        csv = await client.get(
            "/v1/reports/pairs", params={"month": MONTH}, headers={"Accept": "text/csv"}
        )
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[1].startswith("hr,payroll,resolution,2,1,1,0,0.5,0.8,false")


async def test_a_deleted_store_is_rebuilt_from_kafka_to_the_same_reports(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    await put_map(kafka)
    await publish_all(kafka, first_half())
    await publish_all(kafka, second_half())
    async with running(kafka, tmp_path / "one.duckdb") as (_, client):
        before = await settled(client, 8)
    async with running(kafka, tmp_path / "rebuilt.duckdb") as (_, client):
        after = await settled(client, 8)
    assert before["items"] == after["items"]


async def test_a_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    await put_map(kafka)
    count = 20_000  # ten batches: the kill lands mid-stream
    await publish(
        kafka,
        Stream.DECISIONS,
        [b.opened(f"k{i}", "sales", "warehouse", at=minutes(i % 600)) for i in range(count)],
    )
    env = {
        **service_env("METRICS_", kafka),
        "METRICS_HISTORY_PATH": str(tmp_path / "killed.duckdb"),
        "METRICS_LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess("metrics.main", env, "history-kill")

    async def deliveries(client: httpx.AsyncClient) -> int:
        answer = await client.get("/v1/reports/pairs", params={"month": MONTH})
        if answer.status_code != 200:
            return 0
        return sum(i["deliveries"] for i in answer.json()["items"])

    proc.start()
    try:
        async with httpx.AsyncClient(base_url=proc.url, headers=b.AUTH, timeout=5) as client:
            await proc.ready()
            seen = await wait_for(lambda: deliveries(client), within=60, what="a first batch")
            assert seen < count, "all stored before the kill: nothing to prove"
            assert proc.proc is not None
            os.kill(proc.proc.pid, signal.SIGKILL)
            proc.proc.wait()

        proc.start()
        await proc.ready()
        async with httpx.AsyncClient(base_url=proc.url, headers=b.AUTH, timeout=5) as client:

            async def all_stored() -> bool:
                return await deliveries(client) >= count

            await wait_for(all_stored, within=60, what="every record stored")
            found = (await client.get("/v1/reports/pairs", params={"month": MONTH})).json()
            assert found["store"]["lag_records"] == 0
            (item,) = found["items"]
            assert (item["deliveries"], item["handoffs"]) == (count, count)
    finally:
        proc.stop()
