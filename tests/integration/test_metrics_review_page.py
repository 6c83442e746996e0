"""The management-review page in a real headless Chromium, end to end: decisions and lifecycle
events through Kafka into the report store, the page served over HTTP, rendered without a
console error, screenshot and PDF produced, and every figure on it equal to the JSON report's."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import builders as b
from chromium import Chromium
from metrics.main import create_app
from metrics.settings import Settings
from shared.clock import FakeClock
from shared.contracts import ContactV1
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import REPO, free_port, wait_for
from test_metrics_history import MONTH, first_half, minutes, publish_all, rated, rejected
from test_metrics_service import write_records

pytestmark = pytest.mark.kafka

PROCESS = "warehouse"
ARTIFACTS = REPO / ".run" / "test-artifacts"
PAIRS = [("sales", "warehouse"), ("hr", "payroll"), ("warehouse", "billing")]


def warehouse_as_supplier() -> tuple[list[Any], list[Any]]:
    """Three handoffs warehouse -> billing: resolution met twice, missed once; rework; ratings."""
    pair = ("warehouse", "billing")
    decisions = []
    routed = []
    for i in range(3):
        h = f"wb{i}"
        decisions.append(b.opened(h, *pair, at=minutes(200 + i)))
        routed.append(b.submitted(h, *pair, at=minutes(200 + i)))
    for i in range(2):
        for kind in ("met", "stopped"):
            decisions.append(
                b.decision(
                    kind,
                    f"wb{i}",
                    *pair,
                    clock="resolution",
                    at=minutes(260 + i),
                    elapsed_business=3600.0 * (i + 1),
                    elapsed_wall=7200.0,
                )
            )
    decisions.append(
        b.decision(
            "missed", "wb2", *pair, clock="resolution", at=minutes(500), deadline=minutes(500)
        )
    )
    routed += [
        rejected("wb2", "damaged pallet", minutes(210)),
        rated("wb0", 5, "fast & complete", minutes(300)),
        rated("wb1", 3, "ok <but> late paperwork", minutes(301)),
    ]
    return decisions, routed


async def put_map(kafka: KafkaSettings) -> None:
    process_map = b.process_map(PAIRS, objective=0.8)
    owners = {"warehouse": "Wendy Warehouse", "sales": "Sam Sales", "billing": "Bea Billing"}
    process_map = process_map.model_copy(
        update={
            "processes": tuple(
                p.model_copy(update={"owner": ContactV1(name=owners[p.id])})
                if p.id in owners
                else p
                for p in process_map.processes
            )
        }
    )
    await write_records(kafka, Stream.PROCESS_MAP, [(b"current", b.map_bytes(process_map))])


@asynccontextmanager
async def serving(kafka: KafkaSettings, path: Path) -> AsyncIterator[str]:
    """The metrics service over real HTTP (uvicorn in this process)."""
    settings = Settings(
        kafka=kafka, api_keys=b.ADMIN_KEYS, history_path=str(path), sla_url="http://sla:8003"
    )
    app = create_app(settings, FakeClock(b.T0 + timedelta(days=3)))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started, within=30, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def lookup(item: dict[str, Any] | None, path: list[str]) -> Any:
    """A figure of a JSON report item by the page's name for it (deliveries, response.count,
    resolution.business_seconds.p50, rework.rate, satisfaction.mean, ...)."""
    if item is None:
        return 0 if path[-1] in ("deliveries", "count") else None
    if path[0] in ("delivery", "response", "resolution"):
        milestone = next(m for m in item["milestones"] if m["milestone"] == path[0])
        value: Any = milestone
        path = path[1:]
    else:
        value = item
    for part in path:
        value = value[part]
    return value


def same(page_value: str, report_value: Any) -> bool:
    if report_value is None:
        return page_value == ""
    if isinstance(report_value, bool):
        return page_value == ("true" if report_value else "false")
    return float(page_value) == pytest.approx(float(report_value), rel=1e-12)


async def test_the_review_page_renders_in_chromium_with_the_json_reports_figures(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    await put_map(kafka)
    await publish_all(kafka, first_half())
    await publish_all(kafka, warehouse_as_supplier())
    async with serving(kafka, tmp_path / "history.duckdb") as url:
        async with httpx.AsyncClient(base_url=url, headers=b.AUTH, timeout=10) as client:

            async def stored() -> Any:
                found = (await client.get("/v1/reports/pairs", params={"month": MONTH})).json()
                done = sum(i["deliveries"] for i in found["items"]) >= 9
                return found if done and found["store"]["lag_records"] == 0 else None

            await wait_for(stored, within=30, what="the history stored")
            reports = {
                "customer": (
                    await client.get(
                        "/v1/reports/customers", params={"month": MONTH, "customer": PROCESS}
                    )
                ).json(),
                "supplier": (
                    await client.get(
                        "/v1/reports/suppliers", params={"month": MONTH, "supplier": PROCESS}
                    )
                ).json(),
            }

        page_url = f"{url}/v1/reports/review?process={PROCESS}&month={MONTH}"
        async with Chromium(tmp_path / "chromium-profile") as page:
            await page.open(page_url, b.AUTH)
            title = await page.evaluate("document.title")
            figures = await page.evaluate(
                "[...document.querySelectorAll('[data-figure]')]"
                ".map(e => [e.dataset.figure, e.dataset.value])"
            )
            svgs = await page.evaluate("document.querySelectorAll('svg.chart').length")
            png = await page.screenshot()
            pdf = await page.pdf()
            errors = page.errors()

    assert errors == []
    assert title == f"Management review: {PROCESS} — {MONTH}"
    assert svgs >= 4

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "review.png").write_bytes(png)
    (ARTIFACTS / "review.pdf").write_bytes(pdf)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 1000 and height > 1800  # the whole page, beyond the first screen
    assert pdf.startswith(b"%PDF-")
    sizes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert sizes and all(abs(float(w) - 595.9) < 1.5 for w, _ in sizes)  # A4 from @page

    checked = {"customer": 0, "supplier": 0, "trend": 0}
    for name, value in figures:
        role, *path = name.split(".")
        if role == "trend":  # the trend's last month is the period itself
            if path[:2] == [MONTH, "response"]:
                expected = lookup(reports["customer"]["items"][0], path[1:])
                assert same(value, expected), (name, value, expected)
                checked["trend"] += 1
            continue
        if role not in checked:
            continue
        items = reports[role]["items"]
        expected = lookup(items[0] if items else None, path)
        assert same(value, expected), (name, value, expected)
        checked[role] += 1
    # Both roles' figures are on the page: deliveries, per milestone, rework, satisfaction.
    assert checked["customer"] >= 14 and checked["supplier"] >= 14, checked
    assert checked["trend"] == 2, checked  # on-time share and count of the period's month
    as_customer = reports["customer"]["items"][0]
    assert as_customer["rework"]["count"] == 2  # what warehouse returned to sales
    as_supplier = reports["supplier"]["items"][0]
    assert as_supplier["satisfaction"]["mean"] == pytest.approx(4.0)
