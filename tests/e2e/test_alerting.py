"""The alert a team receives, end to end: heartbeat handoffs miss their 2-second P1 response
target in the running system; the real Prometheus (Debian's) scrapes the four services and
evaluates the generated rules; the real Alertmanager routes the page to the receiving team and
delivers it to a webhook receiver started here, with the team labels and the links. The link to
the overdue list is then followed: sla lists the late handoffs.

The rules and routes are generated from deploy/process-map.yaml by the same command as
`make ops`, with test timing only: 1s evaluation, no `for:` holds, a 1s group_wait.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from e2e_system import API_KEY, System
from metrics import ops
from promtools import Daemon, Webhook
from support import REPO, wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PAIR = {"from_team": "service-desk", "to_team": "it-l2-network"}
HANDOFFS = 12  # above the page tiers' low-traffic guard of 10 decided targets
CAPTURED = REPO / ".run" / "e2e-alert-payload.json"


def prometheus_config(system: System, rules: Path, alertmanager: str) -> dict[str, Any]:
    jobs = {"baton-intake": system.intake, "baton-routing": system.routing,
            "baton-sla": system.sla, "baton-metrics": system.metrics}  # fmt: skip
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{proc.port}"]}]}
            for job, proc in jobs.items()
        ],
    }


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with Webhook() as hook:
        yield hook


async def test_a_heartbeat_breach_pages_the_receiving_team_with_its_labels_and_links(
    system: System, webhook: Webhook, tmp_path: Path
) -> None:
    out = tmp_path / "deploy"
    assert ops.main([
        "generate", str(ops.DEFAULT_MAP), "--out", str(out), "--interval", "1s",
        "--long-interval", "1s", "--no-hold", "--group-wait", "1s",
        "--webhook-url", webhook.url, "--sla-url", system.sla.url,
    ]) == 0  # fmt: skip
    alertmanager = Daemon(
        "prometheus-alertmanager",
        [f"--config.file={out / 'alertmanager' / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'am'}", "--cluster.listen-address="],
        "e2e-alertmanager",
    )  # fmt: skip
    prometheus: Daemon | None = None
    try:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                prometheus_config(
                    system, out / "prometheus" / "rules", f"127.0.0.1:{alertmanager.port}"
                )
            )
        )
        prometheus = Daemon(
            "prometheus",
            [f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"],
            "e2e-prometheus",
        )
        await alertmanager.ready()
        await prometheus.ready()
        warm = f"hb-{uuid.uuid4().hex[:6]}-warm"
        async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
            # A first P1 handoff of the pair, answered at once: opening it creates the pair's
            # P1 outcome series at 0 (metrics does that for every pair and priority in use).
            r = await client.post("/v1/handoffs", json={
                "handoff_id": warm, "event_id": f"{warm}-s", "case_id": f"{warm}-case",
                "kind": "heartbeat", "from": "service-desk", "priority": "P1"})  # fmt: skip
            assert r.status_code == 202, r.text
            r = await client.post(
                f"/v1/handoffs/{warm}/events", json={"type": "accepted", "event_id": f"{warm}-a"}
            )
            assert r.status_code == 202, r.text
        async with httpx.AsyncClient(base_url=prometheus.url) as client:

            async def scraped_zero() -> bool:
                # The 0 must be scraped before the misses, or increase() has nothing to start
                # from.
                r = await client.get("/api/v1/query", params={
                    "query": 'count_over_time(handoff_target_outcomes_total{from_team='
                             '"service-desk",to_team="it-l2-network",priority="P1",'
                             'milestone="response",outcome="missed"}[1m]) >= 3'})  # fmt: skip
                return bool(r.json()["data"]["result"])

            await wait_for(scraped_zero, within=60, what="Prometheus scraping metrics")

        batch = f"hb-{uuid.uuid4().hex[:6]}"
        async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
            for i in range(HANDOFFS):
                r = await client.post("/v1/handoffs", json={
                    "handoff_id": f"{batch}-{i}", "event_id": f"{batch}-{i}-s",
                    "case_id": f"{batch}-case", "kind": "heartbeat", "from": "service-desk",
                    "priority": "P1"})  # fmt: skip
                assert r.status_code == 202, r.text

        def page() -> dict[str, Any] | None:
            for payload in webhook.payloads:
                for alert in payload["alerts"]:
                    labels = alert["labels"]
                    if labels["alertname"] == "HandoffErrorBudgetBurn" and labels["tier"] == "1":
                        return payload
            return None

        payload = await wait_for(page, within=120, what="the page at the webhook")
        CAPTURED.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    finally:
        if prometheus is not None:
            prometheus.stop()
        alertmanager.stop()

    assert payload["receiver"] == "team-it-l2-network-page"
    assert payload["status"] == "firing"
    assert payload["groupLabels"] == {
        "alertname": "HandoffErrorBudgetBurn",
        "to_team": "it-l2-network",
    }
    alert = next(a for a in payload["alerts"] if a["labels"]["tier"] == "1")
    labels = alert["labels"]
    assert {k: labels[k] for k in PAIR} == PAIR
    assert labels["severity"] == "page" and labels["category"] == "slo"
    assert labels["milestone"] in {"response", "resolution"}
    # The faster tier inhibits the slower ones of the same pair and clock.
    # (Other alerts of the pair, HandoffsOverdue for one, may reach the webhook too; they
    # have no tier.)
    assert not [a for p in webhook.payloads for a in p["alerts"]
                if a["labels"]["alertname"] == "HandoffErrorBudgetBurn"
                and a["labels"]["tier"] != "1"
                and a["labels"]["milestone"] == labels["milestone"]]  # fmt: skip
    notes = alert["annotations"]
    assert notes["summary"].startswith("service-desk → it-l2-network: ")
    assert notes["runbook_url"].endswith("RUNBOOK.md#handofferrorbudgetburn")
    assert notes["dashboard_url"].startswith("http://127.0.0.1:3000/d/baton-pair/")
    overdue = f"{system.sla.url}/v1/handoffs?view=overdue&from=service-desk&to=it-l2-network"
    assert notes["overdue_url"] == overdue
    async with httpx.AsyncClient(headers=AUTH) as client:  # sla's API takes a read key
        listed = (await client.get(notes["overdue_url"])).json()
    ids = json.dumps(listed)
    assert all(f"{batch}-{i}" in ids for i in range(HANDOFFS)), listed
