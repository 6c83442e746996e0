"""Escalation notifications: which contact of which team hears about a warning, a missed target
or a rejection, when, and what the webhook says. Pure.

The accountable team is told: the receiving team for response and resolution clocks, the
supplier for its delivery promise and for a rejection (its work came back). Its escalation
steps (the route's for the receiving team, else the team's `notify.levels`, else
DEFAULT_STEPS) say at which moment which level hears: `75%` (the warning of that threshold),
`breach` (the missed decision), `breach+1h` (an hour of business time after the deadline, on
the clock's calendar) and `rejected`. Level 0 is the owner, level N the N-th escalation
contact; a level the team lacks falls back to the nearest one below it that it has.

Urgent steps (from the breach on, unless the map says otherwise) go out at once, day and
night; the others wait for the team's service hours (the first working instant of its
calendar at or after the moment). Everything is decided from the decision's own instants, never
the wall clock, so a redelivered decision yields the very same requests (same ids, same
bodies), which the outbox de-duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from routing.domain.catalog import Catalog
from routing.domain.chain import HandoffFacts
from shared.calendar import CalendarError, calendar_for, from_us, to_us
from shared.contracts import (
    CalendarV1,
    ClockName,
    ContactV1,
    EscalationStepV1,
    ProcessV1,
    RouteSpecV1,
    format_duration,
)
from shared.events import (
    Envelope,
    HandoffRejectedV1,
    NotificationReason,
    NotificationRequestedV1,
    NotificationsCancelledV1,
    SlaDecisionV1,
    SlaMetV1,
    SlaMissedV1,
    SlaRetractedV1,
    SlaStoppedV1,
    SlaWarningV1,
    derived_id,
    utc_text,
)

DEFAULT_STEPS: tuple[EscalationStepV1, ...] = (
    EscalationStepV1(at="75%", notify="owner"),
    EscalationStepV1(at="breach", notify="escalation-1"),
    EscalationStepV1(at="breach+1h", notify="escalation-2"),
    EscalationStepV1(at="rejected", notify="owner"),
)
"""A team's steps when the map names none: the owner at 75 % of a target, the first
escalation contact at the breach (the owner if it has none), the next one an hour of business
time later, and the owner when a delivery of the team is rejected."""

SKIP_NO_CONTACT = "no-contact"
SKIP_NO_WEBHOOK = "no-webhook"


@dataclass(frozen=True, slots=True)
class Planned:
    """What a decision or lifecycle event calls for in the outbox."""

    requests: list[NotificationRequestedV1] = field(default_factory=list)
    cancel: NotificationsCancelledV1 | None = None
    skipped: list[str] = field(default_factory=list)
    """One reason per step that found nobody to tell (SKIP_NO_CONTACT, SKIP_NO_WEBHOOK)."""


def has_webhooks(team: ProcessV1 | None) -> bool:
    """True when some contact of the team can be reached by webhook."""
    if team is None:
        return False
    if team.notify is not None and team.notify.webhook is not None:
        return True
    contacts = [team.owner, *team.escalation]
    return any(c is not None and c.webhook is not None for c in contacts)


def contact_at(team: ProcessV1, level: int) -> tuple[int, ContactV1] | None:
    """The contact at `level` (0 the owner, N the N-th escalation contact), or the nearest
    level below it the team has; None when it has none at all."""
    for candidate in range(min(level, len(team.escalation)), -1, -1):
        contact = team.owner if candidate == 0 else team.escalation[candidate - 1]
        if contact is not None:
            return candidate, contact
    return None


def steps_of(
    team: ProcessV1, route: RouteSpecV1 | None, receiving: bool
) -> Sequence[EscalationStepV1]:
    """The escalation steps that apply: the route's for its receiving team, else the team's,
    else the defaults."""
    if receiving and route is not None and route.escalation is not None:
        return route.escalation
    if team.notify is not None and team.notify.levels is not None:
        return team.notify.levels
    return DEFAULT_STEPS


def notification_id(source_event_id: str, step: EscalationStepV1) -> str:
    """Deterministic: a redelivered decision asks for the same notifications."""
    return derived_id("notification", source_event_id, step.at, step.notify)


def cancel_key(source_event_id: str) -> str:
    """The outbox key of the cancellation an event causes (one per event)."""
    return "cancel/" + derived_id("cancel", source_event_id)


def first_open(calendar: CalendarV1 | None, at: datetime) -> datetime:
    """The first instant at or after `at` within the calendar's working time (service hours)."""
    if calendar is None or calendar.always_open:
        return at
    try:
        business = calendar_for(calendar)
        return from_us(business.add_us(to_us(at), 1) - 1)
    except CalendarError:
        return at  # an uncomputable calendar never holds a notification back forever


def business_after(calendar: CalendarV1 | None, at: datetime, delay: timedelta) -> datetime:
    """`delay` of business time after `at` on the calendar (wall time without one)."""
    if calendar is None:
        return at + delay
    try:
        return calendar_for(calendar).add(at, delay)
    except CalendarError:
        return at + delay


def _local(instant: datetime | None, calendar: CalendarV1 | None) -> str:
    if instant is None:
        return "none (paused)"
    zone = calendar.timezone if calendar is not None else "UTC"
    return f"{instant.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"


class Escalations:
    """Turns SLA decisions and lifecycle events into the notifications they call for, over one
    published map."""

    def __init__(self, catalog: Catalog, sla_url: str) -> None:
        self._catalog = catalog
        self._sla_url = sla_url.rstrip("/")

    # ------------------------------------------------------------------ inputs

    def decision(self, envelope: Envelope) -> Planned:
        """What an SLA decision calls for: requests for warnings and misses, a cancellation
        when the milestone came or a miss was retracted, nothing for the rest."""
        decision = envelope.payload
        if not isinstance(decision, SlaDecisionV1):
            return Planned()
        catalog = self._catalog
        if isinstance(decision, SlaMetV1 | SlaStoppedV1 | SlaRetractedV1):
            teams = (
                catalog.processes.get(decision.from_process),
                catalog.processes.get(decision.to_process),
            )
            if not any(has_webhooks(t) for t in teams):
                return Planned()
            return Planned(
                cancel=NotificationsCancelledV1(
                    handoff_id=envelope.key,
                    clock=decision.clock,
                    cycle=decision.cycle,
                    until=decision.decided_at,
                    reason=envelope.event_type,
                )
            )
        if not isinstance(decision, SlaWarningV1 | SlaMissedV1):
            return Planned()
        supplier_clock = decision.clock is ClockName.DELIVERY
        team = catalog.processes.get(
            decision.from_process if supplier_clock else decision.to_process
        )
        if not has_webhooks(team):
            return Planned()
        assert team is not None
        route = catalog.routes.get(decision.route_id)
        planned = Planned()
        for step in steps_of(team, route, receiving=not supplier_clock):
            at = self._moment(step, decision, route, team)
            if at is None:
                continue
            reason, base = at
            request = self._request(envelope, step, reason, base, team, decision)
            if isinstance(request, str):
                planned.skipped.append(request)
            else:
                planned.requests.append(request)
        return planned

    def rejection(
        self, envelope: Envelope, rejected: HandoffRejectedV1, facts: HandoffFacts
    ) -> Planned:
        """A rejection: the supplier's `rejected` steps, and the receiver's pending
        notifications of the closed cycle cancelled."""
        catalog = self._catalog
        supplier = catalog.processes.get(facts.from_process)
        receiver = catalog.processes.get(facts.to_process)
        planned = Planned(cancel=self.closed(envelope, facts, "handoff.rejected"))
        if supplier is None or not has_webhooks(supplier):
            return planned
        route = catalog.routes.get(facts.route_id)
        for step in steps_of(supplier, route, receiving=False):
            if step.at != "rejected":
                continue
            body = self._body_of_rejection(envelope, rejected, facts, receiver)
            request = self._build(
                envelope=envelope,
                step=step,
                reason=NotificationReason.REJECTION,
                base=envelope.occurred_at,
                team=supplier,
                clock=None,
                cycle=None,
                body=body,
            )
            if isinstance(request, str):
                planned.skipped.append(request)
            else:
                planned.requests.append(request)
        return planned

    def closed(
        self, envelope: Envelope, facts: HandoffFacts, reason: str
    ) -> NotificationsCancelledV1 | None:
        """The cancellation of a handoff's pending clock notifications when it closes
        (completed, cancelled, rejected); None when neither team is reached by webhook."""
        catalog = self._catalog
        teams = (catalog.processes.get(facts.from_process), catalog.processes.get(facts.to_process))
        if not any(has_webhooks(t) for t in teams):
            return None
        return NotificationsCancelledV1(
            handoff_id=envelope.key, until=envelope.occurred_at, reason=reason
        )

    # ------------------------------------------------------------------ steps

    def _moment(
        self,
        step: EscalationStepV1,
        decision: SlaWarningV1 | SlaMissedV1,
        route: RouteSpecV1 | None,
        team: ProcessV1,
    ) -> tuple[NotificationReason, datetime] | None:
        """Whether `step` fires on `decision`, with its reason and instant."""
        if isinstance(decision, SlaWarningV1):
            if step.threshold != decision.threshold:
                return None
            return NotificationReason.WARNING, decision.decided_at
        after = step.after_breach
        if after is None:
            return None
        if not after:
            return NotificationReason.BREACH, decision.decided_at
        deadline = decision.deadline or decision.decided_at
        calendar = (
            route.standard.calendar
            if route is not None
            else self._catalog.calendars.get(team.calendar)
        )
        return NotificationReason.ESCALATION, business_after(calendar, deadline, after)

    def _request(
        self,
        envelope: Envelope,
        step: EscalationStepV1,
        reason: NotificationReason,
        base: datetime,
        team: ProcessV1,
        decision: SlaWarningV1 | SlaMissedV1,
    ) -> NotificationRequestedV1 | str:
        route = self._catalog.routes.get(decision.route_id)
        calendar = route.standard.calendar if route is not None else None
        body: dict[str, Any] = {
            **self._handoff_fields(envelope.key, decision.case_id),
            "kind": decision.kind,
            "from": decision.from_process,
            "to": decision.to_process,
            "priority": decision.priority.value,
            "route_id": decision.route_id,
            "standard_version": decision.standard_version,
            "clock": decision.clock.value,
            "cycle": decision.cycle,
            "target_seconds": decision.target_seconds,
            "deadline": utc_text(decision.deadline) if decision.deadline else None,
            "decision_id": envelope.event_id,
            "decided_at": utc_text(decision.decided_at),
            "summary": self._summary(reason, decision, step, calendar),
        }
        if isinstance(decision, SlaWarningV1):
            body["threshold"] = decision.threshold
        return self._build(
            envelope=envelope,
            step=step,
            reason=reason,
            base=base,
            team=team,
            clock=decision.clock,
            cycle=decision.cycle,
            body=body,
        )

    def _build(
        self,
        *,
        envelope: Envelope,
        step: EscalationStepV1,
        reason: NotificationReason,
        base: datetime,
        team: ProcessV1,
        clock: ClockName | None,
        cycle: int | None,
        body: dict[str, Any],
    ) -> NotificationRequestedV1 | str:
        """The request of one step, or why nobody can be told."""
        found = contact_at(team, step.level)
        if found is None:
            return SKIP_NO_CONTACT
        level, contact = found
        notify = team.notify
        webhook = contact.webhook or (notify.webhook if notify is not None else None)
        if webhook is None:
            return SKIP_NO_WEBHOOK
        urgent = step.is_urgent
        not_before = (
            base if urgent else first_open(self._catalog.calendars.get(team.calendar), base)
        )
        nid = notification_id(envelope.event_id, step)
        recipient: dict[str, Any] = {"name": contact.name}
        if contact.email is not None:
            recipient["email"] = contact.email
        full = {
            "notification_id": nid,
            "reason": reason.value,
            "team": team.id,
            "team_name": team.name,
            "level": level,
            "role": "owner" if level == 0 else f"escalation-{level}",
            "recipient": recipient,
            "urgent": urgent,
            **body,
        }
        return NotificationRequestedV1(
            notification_id=nid,
            handoff_id=envelope.key,
            reason=reason,
            clock=clock,
            cycle=cycle,
            team=team.id,
            level=level,
            recipient=contact.name,
            webhook=webhook,
            secret=(notify.secret if notify is not None and notify.secret else team.id),
            urgent=urgent,
            not_before=not_before,
            decided_at=decided_at(envelope),
            body={k: v for k, v in full.items() if v is not None},
        )

    # ------------------------------------------------------------------ bodies

    def _handoff_fields(self, handoff_id: str, case_id: str) -> dict[str, Any]:
        return {
            "handoff_id": handoff_id,
            "case_id": case_id,
            "status_url": f"{self._sla_url}/v1/handoffs/{quote(handoff_id, safe='')}",
            "case_url": f"{self._sla_url}/v1/cases/{quote(case_id, safe='')}",
        }

    def _body_of_rejection(
        self,
        envelope: Envelope,
        rejected: HandoffRejectedV1,
        facts: HandoffFacts,
        receiver: ProcessV1 | None,
    ) -> dict[str, Any]:
        by = receiver.name if receiver is not None else facts.to_process
        return {
            **self._handoff_fields(envelope.key, facts.case_id),
            "kind": facts.kind,
            "from": facts.from_process,
            "to": facts.to_process,
            "priority": facts.priority.value,
            "route_id": facts.route_id,
            "rejected_at": utc_text(envelope.occurred_at),
            "rejection_id": envelope.event_id,
            "rejection_reason": rejected.reason,
            "actor": rejected.actor,
            "summary": (
                f"{by} returned {facts.kind} handoff {envelope.key} (case {facts.case_id}) "
                f"to {facts.from_process}: {rejected.reason}"
            ),
        }

    def _summary(
        self,
        reason: NotificationReason,
        decision: SlaWarningV1 | SlaMissedV1,
        step: EscalationStepV1,
        calendar: CalendarV1 | None,
    ) -> str:
        what = (
            f"{decision.kind} handoff {decision.case_id} from {decision.from_process} "
            f"to {decision.to_process} ({decision.priority.value})"
        )
        deadline = _local(decision.deadline, calendar)
        clock = decision.clock.value
        if reason is NotificationReason.WARNING:
            assert isinstance(decision, SlaWarningV1)
            return (
                f"{what} has used {decision.threshold}% of its {clock} target; deadline {deadline}"
            )
        if reason is NotificationReason.BREACH:
            return f"{what} missed its {clock} target: the deadline was {deadline}"
        after = step.after_breach or timedelta(0)
        return (
            f"{what} is still late {format_duration(after)} of business time after its "
            f"{clock} deadline ({deadline})"
        )


def decided_at(envelope: Envelope) -> datetime:
    """When the decision (or lifecycle event) behind a request happened: what cancellations
    compare with."""
    payload = envelope.payload
    if isinstance(payload, SlaDecisionV1):
        return payload.decided_at
    return envelope.occurred_at


# --------------------------------------------------------------------------- the map checker


def escalation_errors(
    processes: Mapping[str, ProcessV1], routes: Sequence[tuple[str, RouteSpecV1]]
) -> list[tuple[str, str]]:
    """Every problem of the map's escalation steps, as (path, reason): a level the team has no
    contact for, a warning threshold no route of the team warns at, a route-level `rejected`."""
    errors: list[tuple[str, str]] = []
    thresholds: dict[str, set[int]] = {}
    for _, route in routes:
        for team in (route.to_process, route.from_process):
            thresholds.setdefault(team, set()).update(route.standard.warnings)
    for pid, process in processes.items():
        levels = process.notify.levels if process.notify is not None else None
        for index, step in enumerate(levels or ()):
            where = f"processes.{pid}.notify.levels[{index}]"
            errors.extend(_level_errors(where, step, process))
            warns = thresholds.get(pid)
            if step.threshold is not None and warns and step.threshold not in warns:
                errors.append(
                    (
                        f"{where}.at",
                        f"no route of {pid!r} warns at {step.threshold}% "
                        f"(their warnings: {', '.join(f'{w}%' for w in sorted(warns))})",
                    )
                )
    for path, route in routes:
        receiver = processes.get(route.to_process)
        for index, step in enumerate(route.escalation or ()):
            where = f"{path}.escalation[{index}]"
            if step.at == "rejected":
                errors.append(
                    (
                        f"{where}.at",
                        "a rejection tells the supplier: give it in the supplier's "
                        "notify.levels, not on the route",
                    )
                )
                continue
            if receiver is not None:
                errors.extend(_level_errors(where, step, receiver))
            route_warns = route.standard.warnings
            if step.threshold is not None and step.threshold not in route_warns:
                errors.append(
                    (
                        f"{where}.at",
                        f"the route's standard warns at "
                        f"{', '.join(f'{w}%' for w in route_warns)}, "
                        f"not at {step.threshold}%",
                    )
                )
    return errors


def _level_errors(where: str, step: EscalationStepV1, team: ProcessV1) -> list[tuple[str, str]]:
    if step.level == 0 and team.owner is None:
        return [(f"{where}.notify", f"{team.id!r} has no owner")]
    if step.level > len(team.escalation):
        return [
            (
                f"{where}.notify",
                f"{step.notify} but {team.id!r} has {len(team.escalation)} escalation contact(s)",
            )
        ]
    return []
