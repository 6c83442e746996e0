"""Builders of the records metrics consumes, for tests and the benchmark (no I/O).

They build valid contracts from a few facts: a process map from its pairs, SLA decisions and
lifecycle events as envelopes, status-table rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contracts import (
    CalendarV1,
    ClockName,
    ClockTargetsV1,
    Frozen,
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
    HandoffRatedV1,
    HandoffRejectedV1,
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
    make_envelope,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALWAYS = CalendarV1(id="always", always_open=True)
DEFAULT_TARGETS: Mapping[Priority, tuple[str, str]] = {
    Priority.P1: ("15m", "4h"),
    Priority.P2: ("1h", "8h"),
    Priority.P3: ("4h", "24h"),
    Priority.P4: ("8h", "40h"),
}


def standard(
    route_id: str,
    *,
    targets: Mapping[Priority, tuple[str | None, str | None]] = DEFAULT_TARGETS,
    delivery: str | None = None,
    objective: float = 0.95,
) -> ServiceStandardV1:
    """A 24x7 standard with (response, resolution) targets per priority."""
    return ServiceStandardV1.model_validate(
        {
            "route_id": route_id,
            "version": 1,
            "calendar": ALWAYS,
            "targets": {
                p: ClockTargetsV1.model_validate({"response": r, "resolution": s})
                for p, (r, s) in targets.items()
            },
            "delivery": delivery,
            "objective": objective,
        }
    )


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
        processes=tuple(ProcessV1(id=p, name=p, calendar="always") for p in ids),
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


def submitted(
    handoff_id: str, from_team: str, to_team: str, *, at: datetime = T0, routed: bool = True
) -> Envelope:
    """A routed `handoff.submitted` (with its route, as routing publishes it)."""
    payload = HandoffSubmittedV1.model_validate(
        {"case_id": "case-1", "kind": "work", "from": from_team}
    )
    route = None
    if routed:
        route = RouteV1.model_validate(
            {"from": from_team, "to": to_team, "kind": "work", "standard": standard("r")}
        )
    return make_envelope(
        payload, key=handoff_id, producer="routing", occurred_at=at, recorded_at=at, route=route
    )


def rejected(handoff_id: str, *, at: datetime = T0) -> Envelope:
    """A `handoff.rejected` (rework): carries no from/to."""
    payload = HandoffRejectedV1(reason="incomplete")
    return make_envelope(
        payload, key=handoff_id, producer="routing", occurred_at=at, recorded_at=at
    )


def rated(handoff_id: str, rating: int, *, at: datetime = T0) -> Envelope:
    """A `handoff.rated`: carries no from/to."""
    payload = HandoffRatedV1(rating=rating)
    return make_envelope(
        payload, key=handoff_id, producer="routing", occurred_at=at, recorded_at=at
    )


def accepted(handoff_id: str, *, at: datetime = T0) -> Envelope:
    """A `handoff.accepted` (nothing for metrics to count)."""
    return make_envelope(
        HandoffAcceptedV1(), key=handoff_id, producer="routing", occurred_at=at, recorded_at=at
    )


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
    """A process map as routing writes it to the compacted topic."""
    return process_map_.model_dump_json(by_alias=True).encode()
