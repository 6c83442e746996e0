"""Examples of intake's requests and answers, as the OpenAPI shows them (each is checked
against its schema by tests/unit/test_openapi.py)."""

from __future__ import annotations

from typing import Any

EVENTS: dict[str, dict[str, Any]] = {
    "submitted": {
        "type": "submitted",
        "event_id": "po-4711-s",
        "occurred_at": "2026-11-23T14:03:00+01:00",
        "data": {
            "case_id": "order-4711",
            "kind": "pick-request",
            "from": "sales",
            "priority": "P2",
            "attributes": {"customer": "ACME"},
        },
    },
    "expected": {
        "type": "expected",
        "event_id": "pay-2026-11-hr",
        "data": {
            "case_id": "payroll-2026-11",
            "kind": "payroll-input",
            "from": "dept-managers",
            "due_at": "2026-11-26T12:00:00+01:00",
        },
    },
    "accepted": {"type": "accepted", "event_id": "po-4711-a", "data": {"actor": "j.peeters"}},
    "completed": {"type": "completed", "event_id": "po-4711-c", "data": {"note": "picked"}},
    "rejected": {
        "type": "rejected",
        "event_id": "po-4711-r1",
        "data": {"reason": "delivery address missing"},
    },
    "paused": {"type": "paused", "event_id": "demo-1-p1", "data": {"reason": "waiting"}},
    "resumed": {"type": "resumed", "event_id": "demo-1-r1"},
    "reprioritized": {
        "type": "reprioritized",
        "event_id": "demo-1-p",
        "data": {"priority": "P1", "reason": "production line stopped"},
    },
    "cancelled": {"type": "cancelled", "event_id": "po-4711-x", "data": {"reason": "duplicate"}},
    "rated": {
        "type": "rated",
        "event_id": "po-4711-rating",
        "data": {"rating": 4, "comment": "fast, one item missing"},
    },
}
"""One lifecycle event of each type, as posted on POST /v1/handoffs/{handoff_id}/events."""

ONE_EVENT: dict[str, dict[str, Any]] = {
    name: {"summary": f"a {name} event", "value": event} for name, event in EVENTS.items()
}
"""The named examples of the one-event endpoint: one per type."""


def answer(*events: tuple[str, str, str]) -> dict[str, Any]:
    """A 202 answer naming (event_id, handoff_id, type) of each accepted event."""
    return {
        "accepted": len(events),
        "events": [{"event_id": e, "handoff_id": h, "type": t} for e, h, t in events],
    }


SUBMITTED = answer(("demo-1-s", "demo-1", "handoff.submitted"))
PAUSED = answer(("demo-1-p1", "demo-1", "handoff.paused"))
BATCH = answer(
    ("po-4711-s", "po-4711", "handoff.submitted"),
    ("po-4711-a", "po-4711", "handoff.accepted"),
)

CLOUDEVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "erp-77-s",
    "source": "/erp/orders",
    "type": "baton.handoff.submitted",
    "subject": "po-77",
    "time": "2026-11-20T14:03:00+01:00",
    "datacontenttype": "application/json",
    "data": {"case_id": "order-77", "kind": "pick-request", "from": "sales", "priority": "P2"},
}
"""One CloudEvent in structured mode (application/cloudevents+json)."""

CLOUDEVENTS_BATCH: list[dict[str, Any]] = [
    {
        "specversion": "1.0",
        "id": "erp-77-a",
        "source": "/wms",
        "type": "baton.handoff.accepted",
        "subject": "po-77",
        "caseid": "order-77",
        "data": {"actor": "j.peeters"},
    },
    {
        "specversion": "1.0",
        "id": "erp-77-p",
        "source": "/wms",
        "type": "baton.handoff.paused",
        "subject": "po-77",
        "time": "2026-11-20T15:10:00+01:00",
        "data": {"reason": "waiting for stock"},
    },
]
"""A CloudEvents batch (application/cloudevents-batch+json): a JSON array of events."""

CLOUDEVENT_ANSWER = answer(("erp-77-s", "po-77", "handoff.submitted"))

REJECTION: dict[str, Any] = {
    "id": "handoff.routed.v1.dlq:3:118",
    "service": "metrics",
    "reason_code": "unknown-pair",
    "reason": "no supplier/customer known for handoff 'po-9'",
    "failed_at": "2026-11-23T09:14:02.771084Z",
    "handoff_id": "po-9",
    "event_id": "po-9-r",
    "event_type": "handoff.rated",
    "source": "erp",
    "case_id": None,
    "occurred_at": "2026-11-23T09:14:02.680859Z",
    "replayable": True,
    "replayed_at": None,
    "replayed_by": None,
}
REJECTIONS: dict[str, Any] = {"count": 1, "offset": 0, "items": [REJECTION]}
REJECTION_DETAIL: dict[str, Any] = {
    **REJECTION,
    "event": {
        "event_id": "po-9-r",
        "event_type": "handoff.rated",
        "schema_version": 1,
        "occurred_at": "2026-11-23T09:14:02.680859Z",
        "recorded_at": "2026-11-23T09:14:02.680859Z",
        "producer": "routing",
        "key": "po-9",
        "source": "erp",
        "data": {"rating": 4, "comment": "late again"},
    },
}
REPLAYED: dict[str, Any] = {
    "replayed": True,
    "rejection": {
        **REJECTION,
        "replayed_at": "2026-11-23T10:02:11.873060Z",
        "replayed_by": "erp",
    },
}
