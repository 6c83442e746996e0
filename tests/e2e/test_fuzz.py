"""Every service's OpenAPI, fuzzed by schemathesis against the running system with data in it.

Bounded in examples per operation (and by a timeout); a fixed seed keeps CI reproducible (set
BATON_FUZZ_SEED to explore others). The checks: no 5xx, status codes, content types, headers
and bodies as documented (errors are application/problem+json), schema-invalid input refused,
and no operation that ignores its authentication.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from e2e_system import API_KEY, System
from support import REPO, wait_for

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
    )
)
SEED = os.environ.get("BATON_FUZZ_SEED", "1")
AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def seed_data(system: System) -> None:
    """Handoffs in every state, so list, case and status views have something to show."""
    async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
        events = [
            {
                "handoff_id": "fz-open",
                "type": "submitted",
                "event_id": "fz-1",
                "data": {"case_id": "FZ-1", "kind": "incident", "from": "service-desk"},
            },
            {
                "handoff_id": "fz-late",
                "type": "submitted",
                "event_id": "fz-2",
                "data": {
                    "case_id": "FZ-1",
                    "kind": "heartbeat",
                    "from": "service-desk",
                    "priority": "P1",
                },
            },
            {
                "handoff_id": "fz-owed",
                "type": "expected",
                "event_id": "fz-3",
                "data": {
                    "case_id": "FZ-2",
                    "kind": "payroll-input",
                    "from": "dept-managers",
                    "due_at": "2026-12-03T11:00:00+01:00",
                },
            },
            {"handoff_id": "fz-open", "type": "paused", "event_id": "fz-4"},
            {"handoff_id": "fz-late", "type": "accepted", "event_id": "fz-5"},
            {"handoff_id": "fz-gone", "type": "accepted", "event_id": "fz-6"},
        ]
        answer = await client.post("/v1/events", json={"events": events})
        assert answer.status_code == 202, answer.text
    async with httpx.AsyncClient(base_url=system.sla.url, headers=AUTH) as client:

        async def known() -> bool:
            return (await client.get("/v1/handoffs/fz-late")).status_code == 200

        await wait_for(known, what="sla holds the seeded handoffs")


def fuzz(url: str, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {API_KEY}",
        "--checks",
        CHECKS,
        "--max-examples",
        "15",
        "--seed",
        SEED,
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "10",
        "--output-truncate",
        "false",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("service", ["intake", "routing", "sla", "metrics"])
async def test_the_openapi_of_every_service_survives_fuzzing(system: System, service: str) -> None:
    if service == "intake":
        await seed_data(system)
    proc = getattr(system, service)
    report = REPO / ".run" / "fuzz" / f"{service}.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    result = await asyncio.to_thread(fuzz, proc.url, report)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout
