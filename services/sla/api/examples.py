"""Examples of sla's answers, as the OpenAPI shows them (each is checked against its schema by
tests/unit/test_openapi.py): an incident posted Monday 23 November 2026 at 08:40 in Brussels,
on the office calendar (P2: 30 min response, 8 h resolution), seen 22 min 30 s later."""

from __future__ import annotations

from typing import Any

_STARTED = "2026-11-23T07:40:00Z"


def _clock(name: str, target: float, deadline: str, warnings: list[int]) -> dict[str, Any]:
    elapsed = 1350.0
    return {
        "clock": name,
        "cycle": 1,
        "priority": "P2",
        "stage": "running",
        "outcome": None,
        "breached": False,
        "target_seconds": target,
        "started_at": _STARTED,
        "deadline": deadline,
        "stopped_at": None,
        "elapsed_business_seconds": elapsed,
        "elapsed_wall_seconds": elapsed,
        "paused_business_seconds": 0.0,
        "remaining_business_seconds": target - elapsed,
        "used_ratio": round(elapsed / target, 4),
        "warnings_passed": warnings,
    }


HANDOFF: dict[str, Any] = {
    "handoff_id": "demo-1",
    "case_id": "INC-1001",
    "kind": "incident",
    "from": "service-desk",
    "to": "it-l2-apps",
    "priority": "P2",
    "state": "open",
    "standard": {
        "route_id": "incident-apps",
        "version": 1,
        "calendar": "be-office",
        "objective": 0.95,
    },
    "breached": False,
    "ever_breached": False,
    "clocks": [
        _clock("response", 1800.0, "2026-11-23T08:10:00Z", [50, 75]),
        _clock("resolution", 28800.0, "2026-11-24T07:40:00Z", []),
    ],
    "cycles": [
        {"cycle": 1, "started_at": _STARTED, "ended_at": None, "ended_by": None, "breached": False}
    ],
    "history": [{"type": "submitted", "occurred_at": _STARTED, "event_id": "demo-1-s"}],
    "closed_at": None,
    "as_of": "2026-11-23T08:02:30Z",
    "updated_at": "2026-11-23T07:40:00.120000Z",
}

OVERDUE: dict[str, Any] = {
    "view": "overdue",
    "count": 1,
    "truncated": False,
    "items": [
        {
            "handoff_id": "INC-1002-l2",
            "case_id": "INC-1002",
            "kind": "incident",
            "from": "service-desk",
            "to": "it-l2-network",
            "priority": "P1",
            "state": "open",
            "clock": "response",
            "deadline": "2026-11-23T08:15:00Z",
            "used_ratio": 1.5,
            "overdue_seconds": 450.0,
        }
    ],
}

CLOSED: dict[str, Any] = {
    "view": "closed",
    "items": [
        {
            "handoff_id": "INC-0998-l2",
            "case_id": "INC-0998",
            "kind": "incident",
            "from": "service-desk",
            "to": "it-l2-apps",
            "priority": "P3",
            "state": "completed",
            "closed_at": "2026-11-23T07:31:12.004000Z",
            "outcome": "met",
        },
        {
            "handoff_id": "INC-0991-l2",
            "case_id": "INC-0991",
            "kind": "incident",
            "from": "service-desk",
            "to": "it-l2-network",
            "priority": "P1",
            "state": "cancelled",
            "closed_at": "2026-11-20T16:05:40Z",
            "outcome": "missed",
        },
    ],
    "next": "WzE3OTUxOTA3NDAwMDAwMDAsICJJTkMtMDk5MS1sMiJd",
}

CASE: dict[str, Any] = {
    "case_id": "INC-1001",
    "started_at": _STARTED,
    "ended_at": None,
    "end_to_end_wall_seconds": 1350.0,
    "path": ["service-desk", "it-l2-apps"],
    "teams": [
        {
            "team": "it-l2-apps",
            "held_wall_seconds": 1350.0,
            "held_business_seconds": 1350.0,
            "share_of_wall_time": 1.0,
            "handoffs": 1,
            "late_handoffs": 0,
        }
    ],
    "late_handoffs": [],
    "ping_pong": False,
    "ping_pongs": [],
    "returned": False,
    "bounces": [],
    "handoffs": [HANDOFF],
}
