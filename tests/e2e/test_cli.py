"""The `baton` command against the running system: every command, as a user types it, with
the services' URLs and key from the environment (BATON_*_URL, BATON_API_KEY)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from baton.cli import app
from e2e_system import API_KEY, System
from support import REPO, wait_for

MAP = REPO / "deploy" / "process-map.yaml"
runner = CliRunner()


async def baton(system: System, *args: str, stdin: str | None = None) -> Result:
    """Run `baton ARGS` in a worker thread (the client is synchronous)."""
    env = {
        "BATON_INTAKE_URL": system.intake.url,
        "BATON_ROUTING_URL": system.routing.url,
        "BATON_SLA_URL": system.sla.url,
        "BATON_METRICS_URL": system.metrics.url,
        "BATON_API_KEY": API_KEY,
        "BATON_OUTPUT": "table",
        "COLUMNS": "220",
    }
    return await asyncio.to_thread(runner.invoke, app, list(args), input=stdin, env=env)


async def baton_json(system: System, *args: str, stdin: str | None = None) -> Any:
    """`baton -o json ARGS`, which must succeed: its JSON."""
    result = await baton(system, "-o", "json", *args, stdin=stdin)
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def ago(seconds: float) -> str:
    """An event time `seconds` before now (the running system's clocks use event time)."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def heartbeat(handoff_id: str, case_id: str, priority: str, occurred_at: str) -> dict[str, Any]:
    """A submitted heartbeat (24x7, P1 2 s / 4 s, P2 30 s / 1 min targets)."""
    return {
        "handoff_id": handoff_id,
        "type": "submitted",
        "event_id": f"{handoff_id}-s",
        "occurred_at": occurred_at,
        "data": {
            "case_id": case_id,
            "kind": "heartbeat",
            "from": "service-desk",
            "priority": priority,
        },
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def assert_documented(url: str, path: str, body: Any) -> None:
    """`body`, what GET `path` answered, is valid against the 200 its service's OpenAPI
    documents for that path (the document the service serves)."""
    async with httpx.AsyncClient(base_url=url) as client:
        spec = (await client.get("/openapi.json")).json()
    answer = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    root = {**answer["schema"], "components": spec["components"]}
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in Draft202012Validator(root).iter_errors(body)
    ]
    assert not errors, f"GET {path} answered what its OpenAPI does not say: {errors[:5]}"


def cloudevent(
    name: str, handoff_id: str, at: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A CloudEvent 1.0 of Baton's event `name` for a handoff."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"{handoff_id}-{name}",
        "source": "/e2e/cli",
        "type": f"baton.handoff.{name}",
        "subject": handoff_id,
        "time": at,
    }
    return {**event, "data": data} if data else event


async def test_post_of_a_json_lines_file_lands_in_sla_and_posting_it_again_duplicates_nothing(
    system: System, tmp_path: Path
) -> None:
    handoff = unique("cli")
    lines = [
        heartbeat(handoff, unique("CASE"), "P3", ago(1)),
        {"handoff_id": handoff, "type": "accepted"},  # no event_id: derived from the key
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    first = await baton_json(system, "post", str(events))
    assert first["batches"] == 1 and first["accepted"] == 2
    again = await baton_json(system, "post", str(events))
    assert [e["event_id"] for e in again["events"]] == [e["event_id"] for e in first["events"]]

    async def accepted() -> Any:
        result = await baton(system, "-o", "json", "status", handoff)
        if result.exit_code != 0:
            return None
        body = json.loads(result.stdout)
        return body if len(body["history"]) == 2 else None

    body = await wait_for(accepted, what="the posted handoff accepted in sla")
    assert body["from"] == "service-desk" and body["to"] == "it-l2-network"
    assert [e["type"] for e in body["history"]] == ["submitted", "accepted"]
    assert {c["clock"]: c["outcome"] for c in body["clocks"]}["response"] == "met"
    table = await baton(system, "status", handoff)
    assert table.exit_code == 0, table.stderr
    for text in (f"Handoff {handoff}", "service-desk → it-l2-network", "Clocks", "History"):
        assert text in table.stdout


async def test_post_from_stdin_in_batches_with_an_idempotency_key(system: System) -> None:
    case_id = unique("CASE")
    events = [heartbeat(unique("cli-b"), case_id, "P4", ago(1)) for _ in range(5)]
    for event in events:
        del event["event_id"]  # ids derived from KEY-1, KEY-2, KEY-3
    posted = await baton_json(
        system, "post", "-", "--batch-size", "2", "-k", unique("key"), stdin=json.dumps(events)
    )
    assert posted["batches"] == 3 and posted["accepted"] == 5
    assert [e["handoff_id"] for e in posted["events"]] == [e["handoff_id"] for e in events]

    async def all_five() -> Any:
        result = await baton(system, "-o", "json", "case", case_id)
        return result.exit_code == 0 and len(json.loads(result.stdout)["handoffs"]) == 5

    await wait_for(all_five, what="the case's five handoffs in sla")
    table = await baton(system, "case", case_id)
    assert table.exit_code == 0, table.stderr
    assert f"Case {case_id}" in table.stdout and "service-desk → it-l2-network" in table.stdout


async def test_a_refused_event_is_named_by_its_place_in_the_input_and_exits_1(
    system: System, tmp_path: Path
) -> None:
    good = heartbeat(unique("cli-ok"), unique("CASE"), "P3", ago(1))
    bad = heartbeat(unique("cli-bad"), unique("CASE"), "P9", ago(1))
    events = tmp_path / "events.json"
    events.write_text(json.dumps({"events": [good, bad]}))
    result = await baton(system, "post", str(events), "--batch-size", "1")
    assert result.exit_code == 1
    assert "batch 2 of 2" in result.stderr and "422 Invalid events" in result.stderr
    assert "events[1].data.priority: Input should be 'P1', 'P2', 'P3' or 'P4'" in result.stderr
    as_json = await baton(system, "-o", "json", "post", str(events), "--batch-size", "1")
    problem = json.loads(as_json.stderr)
    assert as_json.exit_code == 1 and problem["status"] == 422
    assert problem["errors"][0]["field"] == "events[1].data.priority"


async def test_open_at_risk_and_overdue_list_what_sla_holds(system: System) -> None:
    case_id = unique("CASE")
    late, risky = unique("cli-late"), unique("cli-risk")
    events = [
        heartbeat(late, case_id, "P1", ago(10)),  # both deadlines (2 s, 4 s) passed
        heartbeat(risky, case_id, "P2", ago(20)),  # 30 s response: 50 % warning passed
    ]
    await baton_json(system, "post", "-", stdin=json.dumps(events))

    async def listed(view: str, handoff: str) -> bool:
        found = await baton_json(system, view, "--to", "it-l2-network", "--kind", "heartbeat")
        return handoff in {i["handoff_id"] for i in found["items"]}

    await wait_for(lambda: listed("overdue", late), what="the late handoff in the overdue list")
    assert await listed("at-risk", risky)
    assert await listed("open", late) and await listed("open", risky)
    overdue = await baton_json(system, "overdue", "--to", "it-l2-network")
    await assert_documented(system.sla.url, "/v1/handoffs", overdue)
    table = await baton(system, "overdue", "--priority", "P1", "--limit", "1000")
    assert table.exit_code == 0 and late in table.stdout and risky not in table.stdout


async def test_cloudevents_posted_close_handoffs_that_closed_lists_by_outcome_page_by_page(
    system: System, tmp_path: Path
) -> None:
    met, missed = unique("cli-ce-met"), unique("cli-ce-miss")
    start = datetime.now(UTC) - timedelta(seconds=60)

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    def opening(handoff_id: str, priority: str) -> dict[str, Any]:
        data = {"case_id": unique("CASE"), "kind": "heartbeat", "from": "service-desk"}
        return cloudevent("submitted", handoff_id, at(0), {**data, "priority": priority})

    events = [
        opening(met, "P3"),
        opening(missed, "P1"),  # 2 s response, 4 s resolution: completed at 10 s, late
        cloudevent("accepted", met, at(1)),
        cloudevent("completed", met, at(2)),
        cloudevent("completed", missed, at(10)),
    ]
    file = tmp_path / "cloudevents.jsonl"
    file.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    posted = await baton_json(system, "post", str(file), "--cloudevents")
    assert posted["accepted"] == 5
    assert [e["event_id"] for e in posted["events"]] == [e["id"] for e in events]

    window = ["--since", at(-1), "--until", at(30), "--to", "it-l2-network"]

    async def both_closed() -> Any:
        found = await baton_json(system, "closed", *window)
        return found if len(found["items"]) == 2 else None

    page = await wait_for(both_closed, what="both CloudEvents handoffs closed in sla")
    assert [(i["handoff_id"], i["outcome"]) for i in page["items"]] == [
        (missed, "missed"),  # latest first
        (met, "met"),
    ]
    assert page["next"] is None
    await assert_documented(system.sla.url, "/v1/closed", page)
    only = await baton_json(system, "closed", *window, "--outcome", "met")
    assert [i["handoff_id"] for i in only["items"]] == [met]

    first = await baton_json(system, "closed", *window, "--limit", "1")
    assert [i["handoff_id"] for i in first["items"]] == [missed] and first["next"]
    second = await baton_json(system, "closed", *window, "--limit", "1", "--cursor", first["next"])
    assert [i["handoff_id"] for i in second["items"]] == [met]
    table = await baton(system, "closed", *window, "--limit", "1")
    assert table.exit_code == 0 and missed in table.stdout and "--cursor" in table.stdout
    bad = await baton(system, "closed", "--cursor", "not-a-cursor")
    assert bad.exit_code == 1 and "cursor: not a cursor this API returned" in bad.stderr

    status = await baton_json(system, "status", met)
    assert status["state"] == "completed" and status["closed_at"] is not None
    await assert_documented(system.sla.url, "/v1/handoffs/{handoff_id}", status)
    case = await baton_json(system, "case", status["case_id"])
    await assert_documented(system.sla.url, "/v1/cases/{case_id}", case)


async def test_a_wrong_cloudevent_is_refused_naming_its_attribute(system: System) -> None:
    event = cloudevent("accepted", unique("cli-ce"), ago(1))
    del event["id"]
    result = await baton(system, "post", "-", "--cloudevents", stdin=json.dumps(event))
    assert result.exit_code == 1 and "[0].id: required by CloudEvents 1.0" in result.stderr


async def test_rejections_are_listed_shown_and_replayed(system: System) -> None:
    orphan = unique("cli-gone")  # a rating of a handoff nobody submitted: metrics refuses it
    orphan_event = {
        "handoff_id": orphan,
        "type": "rated",
        "event_id": f"{orphan}-a",
        "data": {"rating": 4},
    }
    await baton_json(system, "post", "-", stdin=json.dumps(orphan_event))

    async def rejected() -> Any:
        found = await baton_json(system, "rejections", "list", "--handoff", orphan)
        return found["items"][0] if found["count"] else None

    item = await wait_for(rejected, what="the orphan event refused downstream")
    assert item["event_id"] == f"{orphan}-a" and item["replayable"]
    listed = await baton(system, "rejections", "list", "--handoff", orphan)
    assert listed.exit_code == 0 and item["id"] in listed.stdout

    shown = await baton(system, "rejections", "show", item["id"])
    assert shown.exit_code == 0, shown.stderr
    assert f"Rejection {item['id']}" in shown.stdout and item["reason_code"] in shown.stdout
    detail = await baton_json(system, "rejections", "show", item["id"])
    assert detail["event"]["event_id"] == f"{orphan}-a"
    await assert_documented(system.intake.url, "/v1/rejections/{rejection_id}", detail)
    listing = await baton_json(system, "rejections", "list", "--handoff", orphan)
    await assert_documented(system.intake.url, "/v1/rejections", listing)

    replayed = await baton(system, "rejections", "replay", item["id"])
    assert replayed.exit_code == 0, replayed.stderr
    assert f"replayed {item['id']}" in replayed.stdout
    twice = await baton(system, "rejections", "replay", item["id"])
    assert twice.exit_code == 1 and "409" in twice.stderr
    forced = await baton_json(system, "rejections", "replay", item["id"], "--force")
    assert forced["replayed"] is True


async def test_map_validate_show_reload_and_versions(system: System, tmp_path: Path) -> None:
    summary = await baton_json(system, "map", "validate", str(MAP))
    assert summary["valid"] is True and "heartbeat" in summary["kinds"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(MAP.read_text().replace("P1: {response: 2s, resolution: 4s}", "P1: 2s"))
    refused = await baton(system, "map", "validate", str(broken))
    assert refused.exit_code == 1 and "422 Invalid process map" in refused.stderr
    assert "routes[" in refused.stderr and ".standard.targets.P1" in refused.stderr

    shown = await baton_json(system, "map", "show")
    assert "heartbeat" in {r["id"] for r in shown["routes"]}
    table = await baton(system, "map", "show")
    assert table.exit_code == 0 and "Routes" in table.stdout and "it-l2-network" in table.stdout

    reloaded = await baton_json(system, "map", "reload", "--revision", "r1", "--author", "cli")
    assert reloaded["version"] == shown["version"] and reloaded["published"] is False
    versions = await baton_json(system, "map", "versions")
    assert versions["in_force"] == shown["version"]
    assert shown["version"] in {v["version"] for v in versions["versions"]}
    listed = await baton(system, "map", "versions")
    assert listed.exit_code == 0 and "in force" in listed.stdout


async def test_health_status_of_an_unknown_handoff_and_a_wrong_key(system: System) -> None:
    health = await baton(system, "health")
    assert health.exit_code == 0, health.stdout
    assert health.stdout.count("ready") == 4
    missing = await baton(system, "status", unique("nobody"))
    assert missing.exit_code == 1 and "sla refused GET /v1/handoffs/" in missing.stderr
    assert "404 Not found" in missing.stderr
    wrong = await baton(system, "--key", "not-a-key-of-this-system", "open")
    assert wrong.exit_code == 1 and "401 Unauthorized: unknown API key" in wrong.stderr


@pytest.mark.parametrize("service", ["intake", "sla", "routing"])
async def test_an_unreachable_service_exits_3_naming_it(system: System, service: str) -> None:
    command = {"intake": ["post", "-"], "sla": ["open"], "routing": ["map", "show"]}[service]
    result = await baton(
        system,
        f"--{service}-url",
        "http://127.0.0.1:9",
        "--retries",
        "0",
        *command,
        stdin='{"handoff_id": "h", "type": "accepted", "event_id": "e"}',
    )
    assert result.exit_code == 3
    assert f"cannot reach {service} at http://127.0.0.1:9" in result.stderr
