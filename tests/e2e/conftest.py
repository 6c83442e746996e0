"""The running system for end-to-end tests: the four services as real processes (uvicorn),
the example process map, a real broker, fresh topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from e2e_system import System
from shared.kafka import ensure_topics
from support import REPO, Broker, ServiceProcess, fresh_settings, service_env


@pytest.fixture(scope="module")
async def system(broker: Broker) -> AsyncIterator[System]:
    kafka = fresh_settings(broker.bootstrap)
    await ensure_topics(kafka)
    env = {
        "intake": service_env("INTAKE_", kafka),
        "routing": {
            **service_env("ROUTING_", kafka),
            "ROUTING_PROCESS_MAP": str(REPO / "deploy" / "process-map.yaml"),
        },
        "sla": service_env("SLA_", kafka),
        "metrics": service_env("METRICS_", kafka),
    }
    procs = {name: ServiceProcess(f"{name}.main", e, f"e2e-{name}") for name, e in env.items()}
    running = System(**procs, kafka=kafka)
    for proc in running.all:
        proc.start()
    try:
        await asyncio.gather(*(p.ready() for p in running.all))
        yield running
    finally:
        for proc in running.all:
            proc.stop()
