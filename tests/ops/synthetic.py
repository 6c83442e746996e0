"""Series of the real metric names: every service's exposition, rendered by its own code.

The metrics service is built by its own `create_app` and fed the example map and a status row
through its table callbacks; counters and histograms are moved through its instruments; the
other services' families come from their own classes. A rename in any of them renames the
series here, and the dashboards' and rules' queries then come back empty (tests/ops fails).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import builders as b
from intake.adapters.telemetry import DeadLetterCollector, IntakeMetrics
from intake.domain.rejections import RejectionIndex
from metrics import ops
from metrics.domain.effects import Effect, Family
from metrics.domain.tally import PairTally
from metrics.handlers import MetricsService
from metrics.main import create_app
from metrics.settings import Settings
from routing.handlers import RejectedCounter
from shared.clock import FakeClock
from shared.kafka import LagCollector, ProcessedCounter
from shared.routes import RejectReason
from shared.settings import KafkaSettings
from sla.adapters.telemetry import SlaTelemetry

PAIR = ("service-desk", "it-l2-network")
PRIORITY = "P1"
MILESTONE = "response"
JOBS = ("baton-intake", "baton-routing", "baton-sla", "baton-metrics")


async def metrics_exposition() -> str:
    """The metrics service's /metrics after traffic on the heartbeat pair."""
    now = b.T0 + timedelta(hours=2)
    settings = Settings(kafka=KafkaSettings(topic_prefix="synthetic."), api_keys=b.ADMIN_KEYS)
    app = create_app(settings, FakeClock(now))
    service: MetricsService = app.state.service
    service.on_process_map(b"current", b.map_bytes(ops.load_map(ops.DEFAULT_MAP)))
    late = now - timedelta(hours=1)
    row = b.status(*PAIR, priority=PRIORITY, clocks=[(MILESTONE, "running", None, late)])
    service.on_status(b"synthetic-1", b.status_bytes(row))
    for i, (f, t) in enumerate(service.catalog.pairs):  # one open handoff on every pair
        held = b.status(f, t, priority=PRIORITY, clocks=[(MILESTONE, "running", None, late)])
        service.on_status(f"synthetic-open-{i}".encode(), b.status_bytes(held))
    clock = (*PAIR, PRIORITY, MILESTONE)
    tally = PairTally(PAIR)
    for effect in (
        Effect(Family.OPENED, (*PAIR, PRIORITY), 4),
        Effect(Family.OUTCOMES, (*clock, "met"), 3),
        Effect(Family.OUTCOMES, (*clock, "missed"), 2),
        Effect(Family.RETRACTIONS, (*clock, "missed"), 1),
        Effect(Family.DURATION, (*PAIR, MILESTONE), 90.0),
        Effect(Family.USAGE, (*PAIR, MILESTONE), 0.8),
        Effect(Family.OUTCOMES, (*PAIR, PRIORITY, "resolution", "met"), 2),
        Effect(Family.DURATION, (*PAIR, "resolution"), 600.0),
        Effect(Family.REWORK, PAIR, 1),
        Effect(Family.SATISFACTION, PAIR, 4.0),
    ):
        tally.apply(effect)
    service.instruments.load(tally)  # as a committed transaction exposes it
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        return (await client.get("/metrics")).text


def platform_exposition() -> dict[str, str]:
    """intake's, routing's and sla's own families, moved once each."""
    out = {}
    intake = CollectorRegistry()
    door = IntakeMetrics(intake)
    door.accept(["handoff.submitted"], "erp")
    door.refuse("invalid")
    letters = RejectionIndex(10)
    letters.counts[("routing", "no-route", "erp")] += 2
    intake.register(DeadLetterCollector(letters, lambda: {"idempotency": 1}))
    out["baton-intake"] = generate_latest(intake).decode()
    routing = CollectorRegistry()
    ProcessedCounter(routing).inc("handoff.events.v1", "handoff.submitted", "invalid")
    RejectedCounter(routing).inc(RejectReason.NO_ROUTE)
    routing.register(LagCollector("routing", lambda: [(TopicPartition("handoff.events.v1", 0), 3)]))
    Gauge("handoff_process_map_version", "as routing's main.py", registry=routing).set(1)
    out["baton-routing"] = generate_latest(routing).decode()
    sla = CollectorRegistry()
    telemetry = SlaTelemetry(sla, "sla.decisions.v1")
    telemetry.breach_delay.labels("sla.decisions.v1", "0").observe(0.02)
    telemetry.transaction(0.01)
    telemetry.unreadable.inc()
    out["baton-sla"] = generate_latest(sla).decode()
    return out


def promtool_series(job: str, text: str, steps: int) -> list[dict[str, str]]:
    """Input series for promtool: counters and histograms grow, gauges stay. Counters still at
    0 (pre-initialised, never moved) are left out: fewer series to evaluate, and the queries
    must cope with combinations that have none (series only for what occurs)."""
    series = []
    for family in text_string_to_metric_families(text):
        growing = family.type in ("counter", "histogram")
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {**sample.labels, "job": job, "instance": f"{job}:0"}
            selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            value = float(sample.value)
            if growing and value == 0:
                continue
            values = f"0+{value:g}x{steps}" if growing else f"{value:g}x{steps}"
            series.append({"series": f"{sample.name}{{{selector}}}", "values": values})
    return series


async def every_series(steps: int = 120) -> list[dict[str, str]]:
    """Every service's series, plus `up` and a firing Baton alert (Prometheus' own)."""
    texts = {"baton-metrics": await metrics_exposition(), **platform_exposition()}
    series = [s for job, text in texts.items() for s in promtool_series(job, text, steps)]
    series += [{"series": f'up{{job="{job}",instance="{job}:0"}}', "values": f"1x{steps}"}
               for job in JOBS]  # fmt: skip
    labels = f'from_team="{PAIR[0]}",to_team="{PAIR[1]}",milestone="{MILESTONE}"'
    series.append(
        {
            "series": f'ALERTS{{alertname="HandoffsOverdue",alertstate="firing",category="state",'
            f'severity="ticket",{labels}}}',
            "values": f"1x{steps}",
        }
    )
    return series
