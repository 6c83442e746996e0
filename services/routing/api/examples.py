"""Examples of routing's answers, as the OpenAPI shows them (each is checked against its
schema by tests/unit/test_openapi.py): the order desk handing pick requests to the warehouse."""

from __future__ import annotations

from typing import Any

CALENDAR: dict[str, Any] = {
    "id": "be-office",
    "timezone": "Europe/Brussels",
    "always_open": False,
    "hours": {"mon-fri": ["08:30-12:00", "13:00-17:30"]},
    "holidays": {"country": "BE", "dates": ["2026-12-24"]},
}
SALES: dict[str, Any] = {
    "id": "sales",
    "name": "Sales (order desk)",
    "calendar": "be-office",
    "owner": {"name": "Sofie Peeters", "email": "sofie.peeters@example.com", "chat": "#sales"},
    "escalation": [{"name": "Head of Sales", "email": "sales-director@example.com"}],
}
WAREHOUSE: dict[str, Any] = {
    "id": "warehouse",
    "name": "Warehouse Antwerp",
    "calendar": "be-office",
    "owner": {"name": "Warehouse shift lead", "email": "warehouse-lead@example.com"},
    "escalation": [{"name": "Logistics manager", "email": "logistics@example.com"}],
}
STANDARD: dict[str, Any] = {
    "route_id": "pick-request",
    "version": 2,
    "calendar": CALENDAR,
    "targets": {
        "P1": {"response": "15m", "resolution": "2h"},
        "P3": {"response": "2h", "resolution": "8h"},
    },
    "warnings": [50, 75],
    "objective": 0.95,
}
ROUTE: dict[str, Any] = {
    "id": "pick-request",
    "from": "sales",
    "kind": "pick-request",
    "to": "warehouse",
    "when": {},
    "standard": STANDARD,
    "alerting": {"severity": "page", "window": "30d"},
}
PROCESS_MAP: dict[str, Any] = {
    "version": 7,
    "published_at": "2026-11-23T07:12:44Z",
    "source": "/etc/baton/process-map.yaml",
    "revision": "4f2c1e9",
    "author": "process-owner@example.com",
    "holidays_version": "0.109",
    "calendars": [CALENDAR],
    "processes": [SALES, WAREHOUSE],
    "groups": {},
    "routes": [ROUTE],
}
PROCESS: dict[str, Any] = {
    "process": WAREHOUSE,
    "calendar": CALENDAR,
    "suppliers": [{"process": "sales", "routes": [ROUTE]}],
    "customers": [],
    "upstream": ["sales"],
    "downstream": [],
}
STANDARDS: list[dict[str, Any]] = [
    {"route_id": "pick-request", "change": "changed", "version": 3, "previous_version": 2}
]
SUMMARY: dict[str, Any] = {
    "valid": True,
    "calendars": 1,
    "processes": 2,
    "routes": 1,
    "kinds": ["pick-request"],
    "compared_with_version": 7,
    "standards": STANDARDS,
    "removed_routes": [],
}
_CHANGES = {"new": 0, "changed": 1, "unchanged": 16, "removed": 0}
RELOADED: dict[str, Any] = {
    "version": 8,
    "published": True,
    "source": "/etc/baton/process-map.yaml",
    "revision": "9b01d7a",
    "author": "process-owner@example.com",
    "changes": _CHANGES,
    "standards": STANDARDS,
    "removed_routes": [],
}
_MANIFEST: dict[str, Any] = {
    "version": 8,
    "published_at": "2026-11-23T09:30:02Z",
    "source": "/etc/baton/process-map.yaml",
    "revision": "9b01d7a",
    "author": "process-owner@example.com",
    "encoding": "zlib+json",
    "parts": 1,
    "size": 13977,
    "compressed": 1772,
    "sha256": "0768f1757af15cdb93781fd497d2bf233bba3e8befb023f6d83df42292ad93eb",
    "processes": 11,
    "groups": 0,
    "routes": 17,
    "changes": _CHANGES,
}
VERSIONS: dict[str, Any] = {"in_force": 8, "versions": [_MANIFEST]}
ROUTE_VERSIONS: dict[str, Any] = {
    "route_id": "pick-request",
    "in_force": True,
    "versions": [
        {
            "version": 2,
            "route": ROUTE,
            "map_version": 7,
            "published_at": "2026-11-23T07:12:44+00:00",
            "source": "/etc/baton/process-map.yaml",
            "revision": "4f2c1e9",
            "author": "process-owner@example.com",
            "until_map_version": 8,
            "ended": "changed",
        },
        {
            "version": 3,
            "route": {
                **ROUTE,
                "standard": {
                    **STANDARD,
                    "version": 3,
                    "targets": {**STANDARD["targets"], "P1": {"response": "10m"}},
                },
            },
            "map_version": 8,
            "published_at": "2026-11-23T09:30:02+00:00",
            "source": "/etc/baton/process-map.yaml",
            "revision": "9b01d7a",
            "author": "process-owner@example.com",
            "until_map_version": None,
            "ended": None,
        },
    ],
}

NOTIFICATIONS: dict[str, Any] = {
    "enabled": True,
    "partitions": {"0": True, "1": True},
    "pending": [
        {
            "notification_id": "8c1d0f7e5b2a4e19a0c3",
            "handoff_id": "po-4711+1",
            "reason": "breach",
            "team": "warehouse",
            "level": 1,
            "recipient": "Logistics manager",
            "webhook": "https://chat.example.com/hooks/warehouse",
            "urgent": True,
            "state": "retrying",
            "due": "2026-11-23T09:31:10Z",
            "attempts": 2,
            "last_error": "HTTP 503: upstream unavailable",
            "in_flight": False,
            "body": {"notification_id": "8c1d0f7e5b2a4e19a0c3", "reason": "breach"},
        }
    ],
    "finished": [
        {
            "notification_id": "3f9a6b2c7d1e4a58b0f2",
            "handoff_id": "po-4711+1",
            "reason": "warning",
            "team": "warehouse",
            "state": "delivered",
            "attempts": 1,
            "at": "2026-11-23T09:22:30Z",
            "status": 204,
            "code": "",
            "error": "",
        }
    ],
}
