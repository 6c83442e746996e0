"""The series budget of the metrics service (services/metrics/domain/tally.py): at most 40
series per supplier->customer pair at one priority, whatever occurred, and an exposition that
`promtool check metrics` passes without a lint finding."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import timedelta

import httpx

import builders as b
from metrics.handlers import MetricsService
from metrics.main import create_app
from metrics.settings import Settings
from promtools import tool
from shared.clock import FakeClock
from shared.settings import KafkaSettings

PAIR = ("sales", "warehouse")
SOURCE = ("sla.decisions.v1", 0)


async def exposition(priorities: tuple[str, ...], retractions: bool = False) -> str:
    """/metrics (Prometheus text) after everything but retractions (unless asked) occurred
    on PAIR, at each of `priorities`: opened, met and missed on response and resolution,
    stopped clocks, rework, a rating, open handoffs with overdue clocks."""
    now = b.T0 + timedelta(days=1)
    app = create_app(
        Settings(kafka=KafkaSettings(topic_prefix="budget."), api_keys=b.ADMIN_KEYS),
        FakeClock(now),
    )
    svc: MetricsService = app.state.service
    svc.on_process_map(b"current", b.map_bytes(b.process_map([PAIR, ("hr", "payroll")])))
    late = now - timedelta(hours=1)
    for p in priorities:
        h = f"h-{p}"
        clocks = [(m, "running", None, late) for m in ("response", "resolution")]
        svc.on_status(f"open-{p}".encode(), b.status_bytes(b.status(*PAIR, priority=p,
                                                                     clocks=clocks)))  # fmt: skip
        events = [b.opened(h, *PAIR, priority=p), b.submitted(h, *PAIR)]
        for i, clock in enumerate(("response", "resolution")):
            events += [
                b.decision("met", f"{h}-{i}", *PAIR, priority=p, clock=clock),
                b.decision("missed", f"{h}-{i}x", *PAIR, priority=p, clock=clock),
                b.decision("stopped", f"{h}-{i}", *PAIR, priority=p, clock=clock),
            ]
            if retractions:
                events.append(
                    b.decision("retracted", h, *PAIR, priority=p, clock=clock, retracted="missed")
                )
        events += [b.rejected(h), b.rated(h, 4)]
        for event in events:
            svc.handle(event, SOURCE)
    svc.prepare()
    svc.committed()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://metrics", headers=b.AUTH
    ) as client:
        return (await client.get("/metrics")).text


def pair_series(text: str) -> list[str]:
    marker = f'from_team="{PAIR[0]}",to_team="{PAIR[1]}"'
    return [line for line in text.splitlines() if marker in line and not line.startswith("#")]


async def test_a_pair_at_one_priority_stays_within_40_series_whatever_occurred() -> None:
    series = pair_series(await exposition(("P2",)))
    assert len(series) == 39, "\n".join(series)
    assert len(pair_series(await exposition(("P2",), retractions=True))) <= 40 + 2


async def test_each_further_priority_in_use_adds_at_most_13_series() -> None:
    one = len(pair_series(await exposition(("P2",))))
    four = len(pair_series(await exposition(("P1", "P2", "P3", "P4"))))
    assert four - one <= 3 * 13


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tool("promtool")), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_promtool_check_metrics_passes_the_exposition_without_findings() -> None:
    text = await exposition(("P1", "P2"), retractions=True)
    checked = await asyncio.to_thread(promtool_check_metrics, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == "", checked.stdout
