"""intake against the real broker: a 202 means the events are on the raw topic."""

from __future__ import annotations

import httpx

from intake.main import create_app
from intake.settings import ApiKey, Settings
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import free_port, read_all, wait_for

KEY = "integration-key-0123456789"


def app_for(kafka: KafkaSettings):
    return create_app(Settings(kafka=kafka, api_keys=[ApiKey(name="erp", key=KEY)]))


async def test_accepted_events_are_on_the_raw_topic_keyed_by_handoff(kafka: KafkaSettings) -> None:
    app = app_for(kafka)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "req-1"}
            await wait_for(lambda: app.state.intake._sink.ready, what="intake connected")
            body = {
                "events": [
                    {
                        "handoff_id": "h1",
                        "type": "submitted",
                        "data": {"case_id": "o-1", "kind": "sales-order", "from": "sales"},
                    },
                    {"handoff_id": "h1", "type": "accepted"},
                    {"handoff_id": "h2", "type": "paused", "data": {"reason": "waiting"}},
                ]
            }
            r = await client.post("/v1/events", json=body, headers=headers)
            assert r.status_code == 202, r.text
            retry = await client.post("/v1/events", json=body, headers=headers)
            assert retry.json() == r.json()
    records = await read_all(kafka, kafka.topics.name(Stream.RAW))
    # Order holds per handoff (one partition each), not across partitions.
    by_key = sorted(records, key=lambda rec: rec.key)
    assert [(rec.key, dict(rec.headers)["ce_type"]) for rec in by_key] == [
        (b"h1", b"handoff.submitted"),
        (b"h1", b"handoff.accepted"),
        (b"h2", b"handoff.paused"),
    ]
    ids = {dict(rec.headers)["ce_id"].decode() for rec in records}
    assert ids == {e["event_id"] for e in r.json()["events"]}


async def test_unreachable_kafka_answers_503_with_retry_after(kafka: KafkaSettings) -> None:
    nowhere = kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    app = app_for(nowhere)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            r = await client.post(
                "/v1/handoffs/h1/events",
                json={"type": "accepted", "event_id": "e1"},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
            ready = await client.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["checks"] == {"kafka": False}
