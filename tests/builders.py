"""Builders of valid contracts for tests and benchmarks: calendars, standards, routes, routed
lifecycle events, SLA decisions, status rows and process maps. One place, no I/O."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Lifespan

from shared.auth import ApiKey
from shared.clock import FakeClock
from shared.contracts import (
    CalendarV1,
    ClockName,
    ClockTargetsV1,
    Frozen,
    MapChangesV1,
    MapManifestV1,
    Priority,
    ProcessMapV1,
    ProcessV1,
    RouteSpecV1,
    RouteV1,
    ServiceStandardV1,
)
from shared.events import (
    ClockStage,
    ClockStatusV1,
    Envelope,
    HandoffAcceptedV1,
    HandoffCancelledV1,
    HandoffCompletedV1,
    HandoffPausedV1,
    HandoffRatedV1,
    HandoffRejectedV1,
    HandoffReprioritizedV1,
    HandoffResumedV1,
    HandoffState,
    HandoffStatusV1,
    HandoffSubmittedV1,
    Outcome,
    SlaMetV1,
    SlaMissedV1,
    SlaOpenedV1,
    SlaRetractedV1,
    SlaStoppedV1,
    SlaWarningV1,
    derived_id,
    make_envelope,
)
from shared.mapwire import PART_BYTES, current_map, encode_map, manifests
from shared.service import service_app
from shared.settings import ServiceSettings

TEST_KEY = "test-admin-key-0123456789"
ADMIN_KEYS = [ApiKey(name="test-admin", key=TEST_KEY, processes=["*"], admin=True)]
"""The key every test app is built with: every scope, every process."""
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
ADMIN_KEYS_JSON = json.dumps(
    [{"name": "test-admin", "key": TEST_KEY, "processes": ["*"], "admin": True}]
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
ALWAYS = CalendarV1(id="24x7", timezone="UTC", always_open=True)
OFFICE = CalendarV1(
    id="be-office",
    timezone="Europe/Brussels",
    hours={"mon-fri": ("08:30-12:00", "13:00-17:30")},
    holidays={"country": "BE"},
)
DEFAULT_TARGETS: Mapping[Priority, tuple[str | None, str | None]] = {
    Priority.P1: ("15m", "4h"),
    Priority.P2: ("1h", "8h"),
    Priority.P3: ("4h", "24h"),
    Priority.P4: ("8h", "40h"),
}


def standard(
    route_id: str = "r1",
    *,
    calendar: CalendarV1 = ALWAYS,
    targets: Mapping[Priority, tuple[str | None, str | None]] = DEFAULT_TARGETS,
    warnings: tuple[int, ...] = (50, 75),
    delivery: str | None = None,
    objective: float = 0.95,
) -> ServiceStandardV1:
    """A standard with (response, resolution) targets per priority."""
    return ServiceStandardV1.model_validate(
        {
            "route_id": route_id,
            "version": 1,
            "calendar": calendar,
            "targets": {
                p: ClockTargetsV1.model_validate({"response": r, "resolution": s})
                for p, (r, s) in targets.items()
            },
            "warnings": warnings,
            "delivery": delivery,
            "objective": objective,
        }
    )


def route(
    response: str = "1h",
    resolution: str = "4h",
    *,
    warnings: tuple[int, ...] = (50, 75),
    route_id: str = "desk-to-l2",
    from_process: str = "service-desk",
    to_process: str = "it-l2",
    kind: str = "incident",
) -> RouteV1:
    """A route on 24x7 with the same targets for every priority."""
    targets = {p: (response, resolution) for p in Priority}
    return RouteV1.model_validate(
        {
            "from": from_process,
            "to": to_process,
            "kind": kind,
            "standard": standard(route_id, targets=targets, warnings=warnings),
        }
    )


_PAYLOADS: dict[str, Frozen] = {
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
    at: datetime = T0,
    *,
    via: RouteV1 | None = None,
    seq: str = "",
    priority: Priority = Priority.P3,
    rating: int = 3,
) -> Envelope:
    """A routed lifecycle event, as routing publishes it (an opening event carries `via`, the
    route, by default `route()`). The id derives from its facts, so two runs publish
    identical streams."""
    event_id = derived_id("test", handoff_id, kind, seq, at.isoformat())
    common: dict[str, Any] = {
        "key": handoff_id,
        "producer": "routing",
        "occurred_at": at,
        "recorded_at": at,
        "event_id": event_id,
    }
    if kind == "submitted":
        via = via or route()
        payload = HandoffSubmittedV1.model_validate(
            {
                "case_id": f"case-{handoff_id}",
                "kind": via.kind,
                "from": via.from_process,
                "priority": priority,
            }
        )
        return make_envelope(payload, correlation_id=payload.case_id, route=via, **common)
    body: Frozen
    if kind == "reprioritized":
        body = HandoffReprioritizedV1(priority=priority)
    elif kind == "rated":
        body = HandoffRatedV1(rating=rating)
    else:
        body = _PAYLOADS[kind]
    return make_envelope(body, **common)


def minutes(base: datetime, m: float) -> datetime:
    """`base` plus `m` minutes."""
    return base + timedelta(minutes=m)


def submitted(handoff_id: str, from_team: str, to_team: str, *, at: datetime = T0) -> Envelope:
    """A routed `handoff.submitted` from `from_team` to `to_team`."""
    via = route(route_id="r", from_process=from_team, to_process=to_team, kind="work")
    return event("submitted", handoff_id, at, via=via)


def rejected(handoff_id: str, *, at: datetime = T0) -> Envelope:
    """A `handoff.rejected` (rework): carries no from/to."""
    return event("rejected", handoff_id, at)


def rated(handoff_id: str, rating: int, *, at: datetime = T0) -> Envelope:
    """A `handoff.rated`: carries no from/to."""
    return event("rated", handoff_id, at, rating=rating)


def accepted(handoff_id: str, *, at: datetime = T0) -> Envelope:
    """A `handoff.accepted`."""
    return event("accepted", handoff_id, at)


def process_map(
    pairs: Iterable[tuple[str, str]],
    *,
    version: int = 1,
    extra_processes: Sequence[str] = (),
    targets: Mapping[Priority, tuple[str | None, str | None]] = DEFAULT_TARGETS,
    delivery: str | None = None,
    objective: float = 0.95,
) -> ProcessMapV1:
    """A process map with one route per (from, to) pair, all under the same kind of standard."""
    pairs = list(pairs)
    ids = sorted({p for pair in pairs for p in pair} | set(extra_processes))
    routes = [
        RouteSpecV1.model_validate(
            {
                "id": f"{f}-to-{t}",
                "from": f,
                "kind": "work",
                "to": t,
                "standard": standard(
                    f"{f}-to-{t}", targets=targets, delivery=delivery, objective=objective
                ),
            }
        )
        for f, t in pairs
    ]
    return ProcessMapV1(
        version=version,
        published_at=T0,
        calendars=(ALWAYS,),
        processes=tuple(ProcessV1(id=p, name=p, calendar=ALWAYS.id) for p in ids),
        routes=tuple(routes),
    )


def _facts(from_team: str, to_team: str, priority: str, cycle: int) -> dict[str, Any]:
    return {
        "case_id": "case-1",
        "kind": "work",
        "from": from_team,
        "to": to_team,
        "priority": priority,
        "cycle": cycle,
        "route_id": f"{from_team}-to-{to_team}",
        "standard_version": 1,
    }


def _wrap(payload: Frozen, handoff_id: str, at: datetime, event_id: str | None) -> Envelope:
    return make_envelope(
        payload,
        key=handoff_id,
        producer="sla",
        occurred_at=at,
        recorded_at=at,
        event_id=event_id,
        correlation_id="case-1",
    )


def opened(
    handoff_id: str,
    from_team: str,
    to_team: str,
    *,
    priority: str = "P3",
    cycle: int = 1,
    at: datetime = T0,
    event_id: str | None = None,
) -> Envelope:
    """An `sla.opened` decision."""
    payload = SlaOpenedV1.model_validate(
        {**_facts(from_team, to_team, priority, cycle), "opened_at": at}
    )
    return _wrap(payload, handoff_id, at, event_id)


def decision(
    kind: str,
    handoff_id: str,
    from_team: str,
    to_team: str,
    *,
    priority: str = "P3",
    clock: str = "resolution",
    cycle: int = 1,
    target_seconds: float = 3600.0,
    deadline: datetime | None = None,
    at: datetime = T0,
    elapsed_wall: float = 1800.0,
    elapsed_business: float = 1800.0,
    retracted: str = "missed",
    late: bool = False,
    event_id: str | None = None,
) -> Envelope:
    """An SLA decision on one clock: kind is warning, met, missed, retracted or stopped."""
    fields: dict[str, Any] = {
        **_facts(from_team, to_team, priority, cycle),
        "clock": clock,
        "target_seconds": target_seconds,
        "deadline": deadline if deadline is not None else at + timedelta(hours=1),
        "decided_at": at,
    }
    model: type[Frozen]
    if kind == "warning":
        model, fields = SlaWarningV1, {**fields, "threshold": 50}
    elif kind == "met":
        model = SlaMetV1
        fields |= {
            "reached_at": at,
            "elapsed_business_seconds": elapsed_business,
            "elapsed_wall_seconds": elapsed_wall,
        }
    elif kind == "missed":
        model = SlaMissedV1
    elif kind == "retracted":
        model = SlaRetractedV1
        fields |= {"retracted": retracted, "reason": "a late event"}
    elif kind == "stopped":
        model = SlaStoppedV1
        fields |= {
            "reached_at": at,
            "elapsed_business_seconds": elapsed_business,
            "elapsed_wall_seconds": elapsed_wall,
            "late": late,
        }
    else:
        raise ValueError(f"unknown decision kind {kind!r}")
    return _wrap(model.model_validate(fields), handoff_id, at, event_id)


ClockSpec = tuple[str, str, str | None, datetime | None]
"""(clock, stage, outcome, deadline)."""


def status(
    from_team: str,
    to_team: str,
    *,
    priority: str = "P3",
    state: str = "open",
    clocks: Sequence[ClockSpec] = (),
    at: datetime = T0,
) -> HandoffStatusV1:
    """A status-table row."""
    return HandoffStatusV1.model_validate(
        {
            "case_id": "case-1",
            "kind": "work",
            "from": from_team,
            "to": to_team,
            "priority": priority,
            "state": HandoffState(state),
            "route_id": f"{from_team}-to-{to_team}",
            "standard_version": 1,
            "clocks": [
                ClockStatusV1(
                    clock=ClockName(clock),
                    cycle=1,
                    stage=ClockStage(stage),
                    outcome=Outcome(outcome) if outcome else None,
                    started_at=at,
                    deadline=deadline,
                    stopped_at=None,
                    target_seconds=3600.0,
                )
                for clock, stage, outcome, deadline in clocks
            ],
            "as_of": at,
        }
    )


def status_bytes(row: HandoffStatusV1) -> bytes:
    """A status row as the sla service writes it to the compacted topic."""
    return row.model_dump_json(by_alias=True).encode()


def map_bytes(process_map_: ProcessMapV1) -> bytes:
    """A process map as one record, the format before parts (readers still accept it)."""
    return process_map_.model_dump_json(by_alias=True).encode()


def map_records(
    process_map_: ProcessMapV1, part_bytes: int = PART_BYTES
) -> list[tuple[bytes, bytes]]:
    """(key, value) of the records routing writes to publish a map (parts, manifest, current)."""
    return [(r.key, r.value) for r in encode_map(process_map_, part_bytes=part_bytes)[1]]


class MemoryMapTopic:
    """The map topic in memory, in its real wire format: a table key -> last value."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes | None] = {}
        self.published: list[ProcessMapV1] = []

    async def read_current(self) -> ProcessMapV1 | None:
        return current_map(self.table)

    async def publish(self, pmap: ProcessMapV1, changes: MapChangesV1 | None = None) -> None:
        for record in encode_map(pmap, changes)[1]:
            self.table[record.key] = record.value
        self.published.append(pmap)

    async def read_history(self) -> tuple[list[MapManifestV1], dict[bytes, bytes | None]]:
        return manifests(self.table), dict(self.table)


def scale_map_yaml(routes: int, *, processes: int | None = None, kinds: int = 4) -> str:
    """A process map of `routes` exact routes (four priorities each, no anchors: the worst case
    for the YAML loader) between generated teams, the size of a real organisation's."""
    teams = processes or max(2, int(routes**0.5) + 2)
    lines = [
        "calendars:",
        "  be-office:",
        "    timezone: Europe/Brussels",
        '    hours: {mon-fri: "08:30-12:00, 13:00-17:30"}',
        "    holidays: {country: BE}",
        "  24x7: {always_open: true}",
        "processes:",
    ]
    lines += [
        f"  team-{i:04d}: {{name: Team {i}, calendar: {'be-office' if i % 3 else '24x7'}}}"
        for i in range(teams)
    ]
    lines.append("routes:")
    made = 0
    for f in range(teams):
        for step in range(1, teams):
            for k in range(kinds):
                if made == routes:
                    return "\n".join(lines) + "\n"
                t = (f + step) % teams
                lines += [
                    f"  - id: r{made:05d}",
                    f"    from: team-{f:04d}",
                    f"    kind: kind-{k}",
                    f"    to: team-{t:04d}",
                    "    standard:",
                    "      targets:",
                    f"        P1: {{response: {5 + made % 10}m, resolution: 4h}}",
                    "        P2: {response: 30m, resolution: 8h}",
                    "        P3: {response: 2h, resolution: 24h}",
                    "        P4: {response: 4h, resolution: 40h}",
                    "      objective: 95%",
                ]
                made += 1
    raise ValueError(f"{teams} teams and {kinds} kinds cannot make {routes} distinct routes")


def bare_service_app(lifespan: Lifespan[FastAPI]) -> FastAPI:
    """The common surface of every service (shared.service) around `lifespan`, and nothing
    of any service's own: an admin key, a fake clock, no routes, no checks."""
    return service_app(
        title="t",
        summary="t",
        settings=ServiceSettings(api_keys=ADMIN_KEYS),
        clock=FakeClock(),
        lifespan=lifespan,
        registry=CollectorRegistry(),
        checks=lambda: {},
    )
