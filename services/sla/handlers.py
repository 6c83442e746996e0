"""sla's translation between Kafka envelopes and the clock domain.

Routed lifecycle events become facts; the domain's decisions become `sla.*` envelopes with
deterministic ids; handoffs become status rows. No I/O here.
"""

from __future__ import annotations

from shared.contracts import ServiceStandardV1
from shared.events import (
    Envelope,
    HandoffOpeningV1,
    HandoffRatedV1,
    HandoffReprioritizedV1,
    HandoffStatusV1,
    SlaMetV1,
    SlaMissedV1,
    SlaOpenedV1,
    SlaRetractedV1,
    SlaStoppedV1,
    SlaWarningV1,
    derived_id,
    make_envelope,
)
from shared.kafka import Rejected
from sla.domain.book import Book, Incoming, Step, standard_key
from sla.domain.calendar import from_us, to_us
from sla.domain.facts import FACT_OF_EVENT, PRIORITIES, Fact
from sla.domain.handoff import Decision, DecisionKind, Head, Opening
from sla.domain.views import US, optional_time, status_of

PRODUCER = "sla"


class StandardKeys:
    """Fingerprinted keys of the standards seen, so the (costly) fingerprint is computed once
    per distinct standard rather than once per event: a decoded standard equal to a known one
    reuses its key."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int], list[tuple[ServiceStandardV1, str]]] = {}

    def key(self, standard: ServiceStandardV1) -> str:
        """The key of a standard."""
        candidates = self._known.setdefault((standard.route_id, standard.version), [])
        for known, key in candidates:
            if known == standard:
                return key
        key = standard_key(standard)
        candidates.append((standard, key))
        return key


def incoming_from(envelope: Envelope, keys: StandardKeys) -> Incoming | None:
    """The fact a routed lifecycle event carries (None for events the clocks ignore)."""
    fact_type = FACT_OF_EVENT.get(envelope.event_type)
    if fact_type is None:
        return None
    payload = envelope.payload
    value = 0
    if isinstance(payload, HandoffReprioritizedV1):
        value = PRIORITIES.index(payload.priority)
    elif isinstance(payload, HandoffRatedV1):
        value = payload.rating
    fact = Fact(to_us(envelope.occurred_at), fact_type, envelope.event_id, value)
    if not isinstance(payload, HandoffOpeningV1):
        return Incoming(envelope.key, fact)
    route = envelope.route
    if route is None:
        raise Rejected("unrouted", f"{envelope.event_type} {envelope.event_id} has no route")
    head = Head(
        kind=payload.kind,
        from_process=route.from_process,
        to_process=route.to_process,
        standard_key=keys.key(route.standard),
    )
    opening = Opening(
        head=head,
        case_id=payload.case_id,
        priority=payload.priority,
        due=to_us(payload.due_at) if payload.due_at is not None else None,
    )
    return Incoming(envelope.key, fact, opening, route.standard)


def decision_envelope(
    step: Step, decision: Decision, book: Book, now: int, cause: str | None
) -> Envelope:
    """The `sla.*` envelope of one decision, with an id that a replay reproduces."""
    handoff = step.handoff
    head = handoff.head
    assert head is not None
    standard = book.standards[head.standard_key]
    common = {
        "case_id": handoff.case_id,
        "kind": head.kind,
        "from": head.from_process,
        "to": head.to_process,
        "route_id": standard.route_id,
        "standard_version": standard.version,
    }
    payload: SlaOpenedV1 | SlaWarningV1 | SlaMetV1 | SlaMissedV1 | SlaRetractedV1 | SlaStoppedV1
    if decision.kind is DecisionKind.OPENED:
        assert decision.cycle is not None and step.evaluation is not None
        payload = SlaOpenedV1.model_validate(
            {
                **common,
                "priority": step.evaluation.priority,
                "cycle": decision.cycle.number,
                "opened_at": from_us(decision.cycle.start),
            }
        )
    else:
        clock = decision.clock
        assert clock is not None
        fields = {
            **common,
            "priority": clock.priority,
            "clock": clock.name,
            "cycle": clock.cycle,
            "target_seconds": clock.target / US,
            "deadline": optional_time(clock.deadline),
            "revision": decision.revision,
            "decided_at": from_us(now),
        }
        if decision.kind is DecisionKind.WARNING:
            payload = SlaWarningV1.model_validate({**fields, "threshold": decision.threshold})
        elif decision.kind is DecisionKind.MISSED:
            payload = SlaMissedV1.model_validate(fields)
        elif decision.kind is DecisionKind.RETRACTED:
            payload = SlaRetractedV1.model_validate(
                {**fields, "retracted": decision.retracted, "reason": decision.reason}
            )
        else:
            assert clock.stop is not None
            durations = {
                "reached_at": from_us(clock.stop),
                "elapsed_business_seconds": clock.elapsed_business / US,
                "elapsed_wall_seconds": clock.elapsed_wall / US,
            }
            if decision.kind is DecisionKind.MET:
                payload = SlaMetV1.model_validate({**fields, **durations})
            else:
                late = clock.deadline is not None and clock.stop > clock.deadline
                payload = SlaStoppedV1.model_validate({**fields, **durations, "late": late})
    return make_envelope(
        payload,
        key=handoff.handoff_id,
        producer=PRODUCER,
        occurred_at=from_us(decision.at),
        recorded_at=from_us(now),
        event_id=derived_id(*decision.id_parts(handoff.handoff_id)),
        correlation_id=handoff.case_id,
        causation_id=cause,
    )


def status_row(step: Step, book: Book) -> tuple[bytes, bytes | None]:
    """The status table record of a handoff: (key, JSON) or (key, None) once forgotten."""
    key = step.handoff.handoff_id.encode()
    head = step.handoff.head
    if step.forgotten or head is None or step.evaluation is None:
        return key, None
    standard = book.standards[head.standard_key]
    row: HandoffStatusV1 = status_of(
        step.handoff, step.evaluation, standard.route_id, standard.version
    )
    return key, row.model_dump_json(by_alias=True).encode()
