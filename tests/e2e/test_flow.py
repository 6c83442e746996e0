"""A handoff's whole journey through the running system: HTTP -> intake -> Kafka -> routing ->
sla -> metrics, read back over HTTP and from /metrics."""

from __future__ import annotations

import uuid

import httpx

from e2e_system import API_KEY, System
from support import wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PAIR = 'from_team="service-desk",to_team="it-l2-network"'


async def metric(system: System, name: str, labels: str) -> float | None:
    """The value of one series on metrics' /metrics, None while absent."""
    async with httpx.AsyncClient(base_url=system.metrics.url) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(part in line for part in labels.split(";")):
            return float(line.rsplit(" ", 1)[1])
    return None


async def handoff_status(system: System, handoff_id: str) -> dict | None:
    async with httpx.AsyncClient(base_url=system.sla.url, headers=AUTH) as client:
        r = await client.get(f"/v1/handoffs/{handoff_id}")
    return r.json() if r.status_code == 200 else None


async def test_submitted_accepted_completed_show_up_as_met_outcomes_and_durations(
    system: System,
) -> None:
    handoff_id = f"hb-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
        r = await client.post(
            "/v1/handoffs",
            json={
                "handoff_id": handoff_id,
                "event_id": f"{handoff_id}-s",
                "case_id": "INC-42",
                "kind": "heartbeat",
                "from": "service-desk",
                "priority": "P3",
            },
        )
        assert r.status_code == 202, r.text
        for kind in ("accepted", "completed"):
            r = await client.post(
                f"/v1/handoffs/{handoff_id}/events",
                json={"type": kind, "event_id": f"{handoff_id}-{kind}"},
            )
            assert r.status_code == 202, r.text

    async def completed() -> dict | None:
        body = await handoff_status(system, handoff_id)
        return body if body and body["state"] == "completed" else None

    body = await wait_for(completed, what="the handoff completed in sla")
    assert body["to"] == "it-l2-network"  # routing filled in the receiver
    assert {c["clock"]: c["outcome"] for c in body["clocks"]} == {
        "response": "met",
        "resolution": "met",
    }

    labels = f'{PAIR};priority="P3";milestone="resolution";outcome="met"'

    async def counted() -> float | None:
        return await metric(system, "handoff_target_outcomes_total", labels)

    assert await wait_for(counted, what="met outcome on /metrics") >= 1
    durations = await metric(
        system, "handoff_duration_seconds_count", f'{PAIR};milestone="response"'
    )
    assert durations is not None and durations >= 1
    opened = await metric(system, "handoff_opened_total", f'{PAIR};priority="P3"')
    assert opened is not None and opened >= 1


async def test_a_handoff_nobody_answers_is_missed_when_its_deadline_passes(system: System) -> None:
    handoff_id = f"hb-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
        r = await client.post(
            "/v1/handoffs",
            json={
                "handoff_id": handoff_id,
                "case_id": "INC-43",
                "kind": "heartbeat",
                "from": "service-desk",
                "priority": "P1",
            },
            headers={"Idempotency-Key": handoff_id},
        )
        assert r.status_code == 202, r.text
    # No further event is sent: the 2 s response and 4 s resolution deadlines pass.

    async def missed_both() -> dict | None:
        body = await handoff_status(system, handoff_id)
        if body and all(c["outcome"] == "missed" for c in body["clocks"]):
            return body
        return None

    body = await wait_for(missed_both, within=30, what="both clocks missed")
    assert body["breached"] is True and body["state"] == "open"
    labels = f'{PAIR};priority="P1";milestone="resolution";outcome="missed"'

    async def counted() -> float | None:
        return await metric(system, "handoff_target_outcomes_total", labels)

    assert await wait_for(counted, what="missed outcome on /metrics") >= 1

    async def overdue() -> float | None:
        return await metric(
            system, "handoff_overdue_items", f'{PAIR};priority="P1";milestone="resolution"'
        )

    assert await wait_for(overdue, what="overdue gauge") >= 1
    async with httpx.AsyncClient(base_url=system.sla.url, headers=AUTH) as client:
        listed = (await client.get("/v1/handoffs", params={"view": "overdue"})).json()
    assert handoff_id in {i["handoff_id"] for i in listed["items"]}


async def test_every_service_answers_health_metrics_and_openapi(system: System) -> None:
    for proc in system.all:
        async with httpx.AsyncClient(base_url=proc.url) as client:
            assert (await client.get("/health/live")).status_code == 200
            assert (await client.get("/health/ready")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            spec = (await client.get("/openapi.json")).json()
            assert spec["openapi"].startswith("3.")


async def test_bad_input_gets_a_4xx_naming_the_field_never_a_500(system: System) -> None:
    bad_requests = [
        ("/v1/handoffs", {"case_id": "c", "kind": "heartbeat", "from": "service-desk"}, 400),
        ("/v1/handoffs", {"event_id": "x", "case_id": "c", "kind": "Bad", "from": "x"}, 422),
        ("/v1/events", {"events": [{"type": "exploded", "handoff_id": "h"}]}, 422),
        ("/v1/events", {"events": "nope"}, 422),
        ("/v1/handoffs/h1/events", {"type": "rated", "event_id": "r", "data": {"rating": 7}}, 422),
    ]
    async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
        for path, body, status in bad_requests:
            r = await client.post(path, json=body)
            assert r.status_code == status, (path, body, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        r = await client.post(
            "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400


async def test_cloudevents_in_all_three_modes_land_in_slas_status(system: System) -> None:
    run = uuid.uuid4().hex[:8]
    ids = {mode: f"ce-{mode}-{run}" for mode in ("structured", "batch", "binary")}

    def opening(mode: str) -> dict[str, object]:
        return {
            "specversion": "1.0",
            "id": f"{ids[mode]}-s",
            "source": "/erp",
            "type": "baton.handoff.submitted",
            "subject": ids[mode],
            "data": {"case_id": f"CE-{run}", "kind": "heartbeat", "from": "service-desk"},
        }

    async with httpx.AsyncClient(base_url=system.intake.url, headers=AUTH) as client:
        structured = await client.post(
            "/v1/events",
            json=opening("structured"),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        batch = await client.post(
            "/v1/events",
            json=[
                opening("batch"),
                {**opening("batch"), "id": f"{ids['batch']}-a", "type": "baton.handoff.accepted"}
                | {"data": None},
            ],
            headers={"Content-Type": "application/cloudevents-batch+json"},
        )
        await client.post(
            "/v1/events",
            json=opening("binary"),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        binary = await client.post(
            "/v1/events",
            json={"reason": "waiting for the caller"},
            headers={
                "ce-specversion": "1.0",
                "ce-id": f"{ids['binary']}-p",
                "ce-source": "/ticketing",
                "ce-type": "baton.handoff.paused",
                "ce-subject": ids["binary"],
            },
        )
    for answer in (structured, batch, binary):
        assert answer.status_code == 202, answer.text

    async def landed() -> dict[str, dict] | None:
        found = {mode: await handoff_status(system, hid) for mode, hid in ids.items()}
        return found if all(found.values()) else None

    found = await wait_for(landed, what="the three CloudEvents handoffs in sla")
    assert {mode: body["to"] for mode, body in found.items()} == dict.fromkeys(ids, "it-l2-network")
    history = {mode: [e["type"] for e in body["history"]] for mode, body in found.items()}
    assert history["batch"] == ["submitted", "accepted"]

    async def paused() -> bool:
        body = await handoff_status(system, ids["binary"])
        return bool(body) and any(c["stage"] == "paused" for c in body["clocks"])

    assert await wait_for(paused, what="the binary-mode pause applied")
