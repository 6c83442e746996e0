"""Routed lifecycle events for sla tests: what routing would publish, built by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.contracts import CalendarV1, ClockTargetsV1, Priority, RouteV1, ServiceStandardV1
from shared.events import (
    Envelope,
    HandoffAcceptedV1,
    HandoffCancelledV1,
    HandoffCompletedV1,
    HandoffPausedV1,
    HandoffRejectedV1,
    HandoffReprioritizedV1,
    HandoffResumedV1,
    HandoffSubmittedV1,
    derived_id,
    make_envelope,
)

ALWAYS = CalendarV1(id="24x7", timezone="UTC", always_open=True)


def route(
    response: str = "1h",
    resolution: str = "4h",
    warnings: tuple[int, ...] = (50, 75),
    route_id: str = "desk-to-l2",
) -> RouteV1:
    """A service-desk -> it-l2 route on 24x7 with the same targets for every priority."""
    targets = {p: ClockTargetsV1(response=response, resolution=resolution) for p in Priority}
    standard = ServiceStandardV1(
        route_id=route_id, version=1, calendar=ALWAYS, targets=targets, warnings=warnings
    )
    return RouteV1.model_validate(
        {"from": "service-desk", "to": "it-l2", "kind": "incident", "standard": standard}
    )


PAYLOADS = {
    "accepted": HandoffAcceptedV1(),
    "completed": HandoffCompletedV1(),
    "rejected": HandoffRejectedV1(reason="missing details"),
    "paused": HandoffPausedV1(reason="waiting for the supplier"),
    "resumed": HandoffResumedV1(),
    "cancelled": HandoffCancelledV1(),
}


def event(
    kind: str,
    handoff_id: str,
    at: datetime,
    *,
    via: RouteV1 | None = None,
    seq: str = "",
    priority: Priority = Priority.P3,
) -> Envelope:
    """A routed event with a deterministic id (so two runs publish identical streams)."""
    event_id = derived_id("test", handoff_id, kind, seq, at.isoformat())
    if kind == "submitted":
        payload = HandoffSubmittedV1.model_validate(
            {
                "case_id": f"case-{handoff_id}",
                "kind": "incident",
                "from": "service-desk",
                "priority": priority,
            }
        )
        return make_envelope(
            payload,
            key=handoff_id,
            producer="test",
            occurred_at=at,
            recorded_at=at,
            event_id=event_id,
            correlation_id=f"case-{handoff_id}",
            route=via or route(),
        )
    body = HandoffReprioritizedV1(priority=priority) if kind == "reprioritized" else PAYLOADS[kind]
    return make_envelope(
        body, key=handoff_id, producer="test", occurred_at=at, recorded_at=at, event_id=event_id
    )


def minutes(base: datetime, m: float) -> datetime:
    return base + timedelta(minutes=m)
