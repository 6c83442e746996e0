"""sla's translation between Kafka envelopes and the clock domain.

Routed lifecycle events become facts; the domain's decisions become `sla.*` envelopes with
deterministic ids; handoffs become status rows. No I/O here.
"""

from __future__ import annotations

import json
from typing import Any

from shared.contracts import ServiceStandardV1
from shared.events import (
    EncodedEvent,
    Envelope,
    HandoffOpeningV1,
    HandoffRatedV1,
    HandoffReprioritizedV1,
    derived_id,
    encode_event,
    utc_text_us,
)
from shared.kafka import Rejected
from sla.domain.book import Book, Incoming, Step, standard_key
from sla.domain.calendar import from_us, to_us
from sla.domain.facts import FACT_OF_EVENT, PRIORITIES, Fact
from sla.domain.handoff import Decision, DecisionKind, Head, Opening
from sla.domain.views import US

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


def _time(us: int | None) -> str | None:
    return None if us is None else utc_text_us(us)


def decision_event(
    step: Step, decision: Decision, book: Book, now: int, cause: str | None
) -> EncodedEvent:
    """The `sla.*` event of one decision, with an id that a replay reproduces.

    Encoded straight from the domain (this is the hot path: several decisions per event);
    the fields are those of the Sla*V1 contracts, which tests check by decoding every kind.
    """
    handoff = step.handoff
    head = handoff.head
    assert head is not None
    standard = book.standards[head.standard_key]
    data: dict[str, Any] = {
        "case_id": handoff.case_id,
        "kind": head.kind,
        "from": head.from_process,
        "to": head.to_process,
        "route_id": standard.route_id,
        "standard_version": standard.version,
    }
    if decision.kind is DecisionKind.OPENED:
        assert decision.cycle is not None and step.evaluation is not None
        data["priority"] = step.evaluation.priority.value
        data["cycle"] = decision.cycle.number
        data["opened_at"] = _time(decision.cycle.start)
    else:
        clock = decision.clock
        assert clock is not None
        data["priority"] = clock.priority.value
        data["clock"] = clock.name.value
        data["cycle"] = clock.cycle
        data["target_seconds"] = clock.target / US
        data["deadline"] = _time(clock.deadline)
        data["revision"] = decision.revision
        data["decided_at"] = _time(now)
        if decision.kind is DecisionKind.WARNING:
            data["threshold"] = decision.threshold
        elif decision.kind is DecisionKind.RETRACTED:
            assert decision.retracted is not None
            data["retracted"] = decision.retracted.value
            data["reason"] = decision.reason
        elif decision.kind in (DecisionKind.MET, DecisionKind.STOPPED):
            assert clock.stop is not None
            data["reached_at"] = _time(clock.stop)
            data["elapsed_business_seconds"] = clock.elapsed_business / US
            data["elapsed_wall_seconds"] = clock.elapsed_wall / US
            if decision.kind is DecisionKind.STOPPED:
                data["late"] = clock.deadline is not None and clock.stop > clock.deadline
    return encode_event(
        f"sla.{decision.kind.value}",
        data,
        event_id=derived_id(*decision.id_parts(handoff.handoff_id)),
        key=handoff.handoff_id,
        producer=PRODUCER,
        occurred_at=from_us(decision.at),
        recorded_at=from_us(now),
        correlation_id=handoff.case_id,
        causation_id=cause,
    )


def status_row(step: Step, book: Book) -> tuple[bytes, bytes | None]:
    """The status table record of a handoff (HandoffStatusV1 JSON), None once forgotten."""
    handoff = step.handoff
    key = handoff.handoff_id.encode()
    head = handoff.head
    evaluation = step.evaluation
    if step.forgotten or head is None or evaluation is None:
        return key, None
    standard = book.standards[head.standard_key]
    row = {
        "case_id": handoff.case_id,
        "kind": head.kind,
        "from": head.from_process,
        "to": head.to_process,
        "priority": evaluation.priority.value,
        "state": evaluation.state.value,
        "route_id": standard.route_id,
        "standard_version": standard.version,
        "clocks": [
            {
                "clock": c.name.value,
                "cycle": c.cycle,
                "stage": c.stage.value,
                "outcome": None if c.outcome is None else c.outcome.value,
                "started_at": _time(c.start),
                "deadline": _time(c.deadline),
                "stopped_at": _time(c.stop if c.stop is not None else c.void_at),
                "target_seconds": c.target / US,
            }
            for c in evaluation.clocks
        ],
        "as_of": _time(evaluation.now),
    }
    return key, json.dumps(row, separators=(",", ":")).encode()
