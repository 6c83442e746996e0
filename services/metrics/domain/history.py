"""The handoff history as rows: what each consumed event adds to the report store.

Pure: an envelope (or a published process map) in, rows out. Every lifecycle event of
`handoff.routed.v1` becomes a `LifecycleRow` (rework reasons, ratings and comments included),
every decision of `sla.decisions.v1` a `DecisionRow` (each clock's outcome per cycle, its
durations in business and wall time, the standard and its version), and every standard of a
published map a `StandardRow` (objectives and targets of each version ever published). Rows
are keyed by the event id, so storing one twice changes nothing.

Instants are naive UTC datetimes: the store keeps UTC and never converts time zones itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

from shared.contracts import (
    ClockName,
    Priority,
    ProcessMapV1,
    ServiceStandardV1,
    format_duration,
)
from shared.events import (
    Envelope,
    HandoffCancelledV1,
    HandoffCompletedV1,
    HandoffOpeningV1,
    HandoffPausedV1,
    HandoffRatedV1,
    HandoffRejectedV1,
    HandoffReprioritizedV1,
    SlaDecisionV1,
    SlaMetV1,
    SlaOpenedV1,
    SlaRetractedV1,
    SlaStoppedV1,
    SlaWarningV1,
)


def naive_utc(instant: datetime) -> datetime:
    """An aware instant as the store keeps it: UTC, without tzinfo."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def aware_utc(instant: datetime) -> datetime:
    """A stored (naive UTC) instant as an aware UTC datetime."""
    return instant.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LifecycleRow:
    """One routed lifecycle event (`handoff.*`)."""

    event_id: str
    handoff_id: str
    case_id: str | None
    type: str
    """The lifecycle name: submitted, accepted, completed, rejected, rated, ..."""
    occurred_at: datetime
    recorded_at: datetime
    from_process: str | None
    to_process: str | None
    kind: str | None
    priority: str | None
    route_id: str | None
    standard_version: int | None
    actor: str | None
    reason: str | None
    """Why: a rejection's reason (rework), a pause's, a cancellation's, a reprioritisation's."""
    note: str | None
    rating: int | None
    comment: str | None
    source: str | None
    seq: int
    """The record's offset in its partition: a handoff's events share a partition, so this
    orders events of the same instant as they were posted."""


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One SLA decision (`sla.*`): opened per cycle, or warning/met/missed/retracted/stopped
    per clock and cycle."""

    event_id: str
    handoff_id: str
    case_id: str
    type: str
    """opened, warning, met, missed, retracted or stopped."""
    occurred_at: datetime
    """Event time: cycle start (opened), milestone (met, stopped), deadline (missed),
    threshold instant (warning), evaluation instant (retracted)."""
    kind: str
    from_process: str
    to_process: str
    priority: str
    cycle: int
    route_id: str
    standard_version: int
    clock: str | None
    target_seconds: float | None
    deadline: datetime | None
    revision: int | None
    decided_at: datetime | None
    reached_at: datetime | None
    business_seconds: float | None
    wall_seconds: float | None
    late: bool | None
    retracted: str | None
    reason: str | None
    threshold: int | None


@dataclass(frozen=True, slots=True)
class StandardRow:
    """One version of one route's service standard, as a published map had it."""

    route_id: str
    version: int
    from_process: str
    to_process: str
    kind: str
    objective: float
    calendar: str
    delivery_seconds: float | None
    targets: str
    """'P1 response 15m, resolution 4h; P2 ...': the targets as people read them."""
    map_version: int
    published_at: datetime


LIFECYCLE_COLUMNS = tuple(f.name for f in fields(LifecycleRow))
DECISION_COLUMNS = tuple(f.name for f in fields(DecisionRow))
STANDARD_COLUMNS = tuple(f.name for f in fields(StandardRow))

HistoryRow = LifecycleRow | DecisionRow


def _reason(payload: object) -> str | None:
    if isinstance(
        payload, HandoffRejectedV1 | HandoffPausedV1 | HandoffCancelledV1 | HandoffReprioritizedV1
    ):
        return payload.reason
    return None


def lifecycle_row(envelope: Envelope, seq: int = 0) -> LifecycleRow:
    """The row of a routed lifecycle event (`seq`: its offset in its partition)."""
    payload = envelope.payload
    route = envelope.route
    case_id = envelope.correlation_id
    kind = priority = from_process = to_process = route_id = None
    version: int | None = None
    if isinstance(payload, HandoffOpeningV1):
        case_id = payload.case_id
        kind, priority = payload.kind, payload.priority.value
        from_process, to_process = payload.from_process, payload.to_process
    if isinstance(payload, HandoffReprioritizedV1):
        priority = payload.priority.value
    if route is not None:
        from_process, to_process, kind = route.from_process, route.to_process, route.kind
        route_id, version = route.standard.route_id, route.standard.version
    return LifecycleRow(
        event_id=envelope.event_id,
        handoff_id=envelope.key,
        case_id=case_id,
        type=envelope.event_type.removeprefix("handoff."),
        occurred_at=naive_utc(envelope.occurred_at),
        recorded_at=naive_utc(envelope.recorded_at),
        from_process=from_process,
        to_process=to_process,
        kind=kind,
        priority=priority,
        route_id=route_id,
        standard_version=version,
        actor=getattr(payload, "actor", None),
        reason=_reason(payload),
        note=payload.note if isinstance(payload, HandoffCompletedV1) else None,
        rating=payload.rating if isinstance(payload, HandoffRatedV1) else None,
        comment=payload.comment if isinstance(payload, HandoffRatedV1) else None,
        source=envelope.source,
        seq=seq,
    )


def _opt(instant: datetime | None) -> datetime | None:
    return None if instant is None else naive_utc(instant)


def decision_row(envelope: Envelope) -> DecisionRow | None:
    """The row of an SLA decision (None for a payload that is no decision)."""
    payload = envelope.payload
    if not isinstance(payload, SlaOpenedV1 | SlaDecisionV1):
        return None
    clock = target = deadline = revision = decided = None
    reached = business = wall = late = retracted = reason = threshold = None
    if isinstance(payload, SlaDecisionV1):
        clock, target = payload.clock.value, payload.target_seconds
        deadline, revision = _opt(payload.deadline), payload.revision
        decided = naive_utc(payload.decided_at)
    if isinstance(payload, SlaMetV1 | SlaStoppedV1):
        reached = naive_utc(payload.reached_at)
        business, wall = payload.elapsed_business_seconds, payload.elapsed_wall_seconds
    if isinstance(payload, SlaStoppedV1):
        late = payload.late
    if isinstance(payload, SlaRetractedV1):
        retracted, reason = payload.retracted.value, payload.reason
    if isinstance(payload, SlaWarningV1):
        threshold = payload.threshold
    return DecisionRow(
        event_id=envelope.event_id,
        handoff_id=envelope.key,
        case_id=payload.case_id,
        type=envelope.event_type.removeprefix("sla."),
        occurred_at=naive_utc(envelope.occurred_at),
        kind=payload.kind,
        from_process=payload.from_process,
        to_process=payload.to_process,
        priority=payload.priority.value,
        cycle=payload.cycle,
        route_id=payload.route_id,
        standard_version=payload.standard_version,
        clock=clock,
        target_seconds=target,
        deadline=deadline,
        revision=revision,
        decided_at=decided,
        reached_at=reached,
        business_seconds=business,
        wall_seconds=wall,
        late=late,
        retracted=retracted,
        reason=reason,
        threshold=threshold,
    )


def history_row(envelope: Envelope, seq: int = 0) -> HistoryRow | None:
    """What one consumed event adds to the history (None: nothing, e.g. a status record);
    `seq` is the record's offset in its partition."""
    if envelope.event_type.startswith("handoff."):
        return lifecycle_row(envelope, seq)
    return decision_row(envelope)


def targets_text(standard: ServiceStandardV1) -> str:
    """A standard's targets as people read them: 'P1 response 15m, resolution 4h; P2 ...'."""
    parts = []
    for priority in Priority:
        texts = []
        for clock in (ClockName.RESPONSE, ClockName.RESOLUTION):
            target = standard.target(priority, clock)
            if target is not None:
                texts.append(f"{clock.value} {format_duration(target)}")
        if texts:
            parts.append(f"{priority.value} {', '.join(texts)}")
    return "; ".join(parts)


def standard_rows(process_map: ProcessMapV1) -> list[StandardRow]:
    """Every route's standard of a published map, at its version."""
    out = []
    for route in process_map.routes:
        standard = route.standard
        out.append(
            StandardRow(
                route_id=route.id,
                version=standard.version,
                from_process=route.from_process,
                to_process=route.to_process,
                kind=route.kind,
                objective=standard.objective,
                calendar=standard.calendar.id,
                delivery_seconds=(
                    standard.delivery.total_seconds() if standard.delivery is not None else None
                ),
                targets=targets_text(standard),
                map_version=process_map.version,
                published_at=naive_utc(process_map.published_at),
            )
        )
    return out
