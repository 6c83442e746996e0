"""Examples of metrics' report and export answers, as the OpenAPI shows them (each is checked
against its schema by tests/unit/test_openapi.py): November 2026 between the service desk and
the second-line network team, on the office calendar."""

from __future__ import annotations

from typing import Any

_WINDOW = {
    "start": "2026-11-01T00:00:00Z",
    "end": "2026-12-01T00:00:00Z",
    "label": "2026-11",
    "timezone": "UTC",
}
_STORE = {"caught_up": True, "lag_records": 0}

LATE_HANDOFF: dict[str, Any] = {
    "handoff_id": "INC-1001#2",
    "case_id": "INC-1001",
    "from": "service-desk",
    "to": "it-l2-network",
    "kind": "incident",
    "milestone": "response",
    "priority": "P2",
    "cycle": 1,
    "route_id": "incident-network",
    "standard_version": 3,
    "deadline": "2026-11-23T08:10:00Z",
    "reached_at": "2026-11-23T08:42:00Z",
    "target_seconds": 1800.0,
    "business_seconds": 3720.0,
    "status_url": "http://127.0.0.1:8003/v1/handoffs/INC-1001%232",
}

LATE: dict[str, Any] = {
    "window": _WINDOW,
    "filters": {"to": "it-l2-network"},
    "items": [LATE_HANDOFF],
    "page": {"limit": 50, "offset": 0, "total": 1, "next_offset": None},
    "store": _STORE,
}


def _quantiles(p50: float, p90: float, p95: float) -> dict[str, float]:
    return {"p50": p50, "p90": p90, "p95": p95}


REPORT: dict[str, Any] = {
    "report": "pairs",
    "window": _WINDOW,
    "filters": {},
    "items": [
        {
            "group": {"from": "service-desk", "to": "it-l2-network"},
            "deliveries": 42,
            "handoffs": 40,
            "milestones": [
                {
                    "milestone": "response",
                    "count": 41,
                    "met": 38,
                    "breaches": 3,
                    "retractions": 0,
                    "on_time_ratio": 0.9268,
                    "objective": 0.95,
                    "meets_objective": False,
                    "business_seconds": _quantiles(840.0, 1620.0, 2100.0),
                    "wall_seconds": _quantiles(900.0, 5400.0, 61200.0),
                    "timed": 41,
                }
            ],
            "rework": {
                "count": 2,
                "deliveries": 42,
                "rate": 0.0476,
                "reasons": [{"reason": "no affected site given", "count": 2}],
            },
            "satisfaction": {
                "count": 5,
                "mean": 4.2,
                "distribution": {"1": 0, "2": 0, "3": 1, "4": 2, "5": 2},
                "comments": [
                    {
                        "handoff_id": "INC-1001#2",
                        "case_id": "INC-1001",
                        "rating": 3,
                        "comment": "fixed, but late",
                        "at": "2026-11-23T10:05:00Z",
                        "actor": "n.peeters",
                    }
                ],
            },
            "late": [LATE_HANDOFF],
        }
    ],
    "page": {"limit": 50, "offset": 0, "total": 1, "next_offset": None},
    "store": _STORE,
}

REPORT_CSV = (
    "from,to,milestone,count,met,breaches,on_time_ratio,objective\r\n"
    "service-desk,it-l2-network,response,41,38,3,0.9268,0.95\r\n"
)
LATE_CSV = (
    "handoff_id,case_id,from,to,milestone,priority,deadline,reached_at\r\n"
    "INC-1001#2,INC-1001,service-desk,it-l2-network,response,P2,"
    "2026-11-23T08:10:00Z,2026-11-23T08:42:00Z\r\n"
)
REVIEW_HTML = "<!doctype html><html><head><title>Management review: it-l2-network</title>..."
EVENTS_CSV = (
    "case_id,handoff_id,activity,timestamp,team\r\n"
    "INC-1001,INC-1001#2,submitted,2026-11-23T07:40:00Z,service-desk\r\n"
)
EVENTS_XES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1849-2016">'
    '<trace><string key="concept:name" value="INC-1001"/>...</trace></log>'
)
EVENTS_OCEL: dict[str, Any] = {
    "objectTypes": [{"name": "case", "attributes": []}],
    "eventTypes": [{"name": "submitted", "attributes": []}],
    "objects": [{"id": "case:INC-1001", "type": "case"}],
    "events": [
        {
            "id": "e-1",
            "type": "submitted",
            "time": "2026-11-23T07:40:00Z",
            "relationships": [{"objectId": "case:INC-1001", "qualifier": "case"}],
        }
    ],
}
