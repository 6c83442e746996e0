"""sla's use case, per input partition: routed events and "now" in, what to write back out.

`PartitionClocks` holds the handoffs of one partition (a `Book`). `apply` takes decoded routed
events, `tick` the passing of time; both return `Written`: the decisions (`sla.*` events with
deterministic ids), the status rows, the handoffs whose changelog record must be rewritten, the
standards seen for the first time, and the events rejected with a reason. Nothing here does
I/O: the Kafka entrypoint (`sla.consumer`) encodes the changelog records, writes everything in
one transaction and commits.

The wire contract is defined once, in `shared.events`: decisions and status rows are built as
its models and serialized by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.calendar import CalendarError, from_us, to_us
from shared.contracts import ServiceStandardV1
from shared.events import (
    ClockStatusV1,
    EncodedEvent,
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
    encode_event,
)
from shared.kafka import Rejected
from sla.domain.book import Book, Incoming, Step, standard_key
from sla.domain.facts import FACT_OF_EVENT, PRIORITIES, Fact
from sla.domain.handoff import Decision, DecisionKind, Handoff, Head, Opening
from sla.domain.views import US, optional_time

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
    """The fact a routed lifecycle event carries (None for events the clocks ignore); raises
    Rejected for an opening event that routing did not route."""
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


@dataclass(slots=True)
class Written:
    """What one batch of events, or one wake-up, makes the partition write."""

    decisions: list[EncodedEvent] = field(default_factory=list)
    status: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    """(handoff id, HandoffStatusV1 JSON), None once the handoff is forgotten."""
    changed: list[tuple[str, Handoff | None]] = field(default_factory=list)
    """Handoffs whose changelog record is to be rewritten (None: deleted)."""
    standards: list[tuple[str, ServiceStandardV1]] = field(default_factory=list)
    """Standards this partition holds for the first time (their changelog records)."""
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    """(index of the event in the batch, code, reason): to dead-letter."""
    results: list[tuple[str, str]] = field(default_factory=list)
    """(event type, ok | duplicate | ignored) of every event not rejected."""
    missed: list[int] = field(default_factory=list)
    """Deadlines of the missed decisions (for the breach-detection delay)."""
    uncomputable: list[tuple[str, str]] = field(default_factory=list)
    """(handoff id, why) of wake-ups whose clocks could not be computed: logged, counted."""

    def __bool__(self) -> bool:
        return bool(self.status or self.changed or self.standards or self.rejected)


class PartitionClocks:
    """The clocks of every handoff of one input partition."""

    def __init__(self, retention_us: int, orphan_retention_us: int) -> None:
        self.book = Book(retention_us, orphan_retention_us)
        self._keys = StandardKeys()

    def apply(self, events: Sequence[Envelope], now: int) -> Written:
        """Record routed events (in partition order) and decide what they change."""
        out = Written()
        book = self.book
        for index, envelope in enumerate(events):
            try:
                incoming = incoming_from(envelope, self._keys)
            except Rejected as exc:
                out.rejected.append((index, exc.code, exc.reason))
                continue
            if incoming is None:
                out.results.append((envelope.event_type, "ignored"))
                continue
            opening, standard = incoming.opening, incoming.standard
            if (
                standard is not None
                and opening is not None
                and book.learn(standard, opening.head.standard_key)
            ):
                out.standards.append((opening.head.standard_key, standard))
            try:
                step = book.apply(incoming, now)
            except CalendarError as exc:
                # No input may stall a partition: the event is dead-lettered with the reason,
                # the handoff stays as it was, and the batch goes on.
                out.rejected.append((index, "uncomputable", str(exc)))
                continue
            if step is None:
                out.results.append((envelope.event_type, "duplicate"))
                continue
            out.results.append((envelope.event_type, "ok"))
            self._write(step, now, envelope.event_id, out)
        return out

    def tick(self, now: int, limit: int = 2000) -> Written | None:
        """Decide what is due by `now` (missed deadlines, warnings, forgetting), at most
        `limit` handoffs at once; None when nothing is due."""
        steps = self.book.due(now, limit=limit)
        out = Written(uncomputable=self.book.uncomputable)
        self.book.uncomputable = []
        if not steps and not out.uncomputable:
            return None
        for step in steps:
            self._write(step, now, None, out)
        return out

    def next_wake(self) -> int | None:
        """The next instant time alone changes something."""
        return self.book.next_wake()

    def _write(self, step: Step, now: int, cause: str | None, out: Written) -> None:
        for decision in step.decisions:
            out.decisions.append(decision_event(step, decision, self.book, now, cause))
            if decision.kind is DecisionKind.MISSED:
                out.missed.append(decision.at)
        handoff = step.handoff
        out.status.append((handoff.handoff_id.encode(), status_row(step, self.book)))
        out.changed.append((handoff.handoff_id, None if step.forgotten else handoff))


def decision_event(
    step: Step, decision: Decision, book: Book, now: int, cause: str | None
) -> EncodedEvent:
    """The `sla.*` event of one decision, with an id that a replay reproduces."""
    handoff = step.handoff
    head = handoff.head
    assert head is not None
    standard = book.standards[head.standard_key]
    facts = {
        "case_id": handoff.case_id,
        "kind": head.kind,
        "from_process": head.from_process,
        "to_process": head.to_process,
        "route_id": standard.route_id,
        "standard_version": standard.version,
    }
    payload: SlaOpenedV1 | SlaWarningV1 | SlaMetV1 | SlaMissedV1 | SlaRetractedV1 | SlaStoppedV1
    if decision.kind is DecisionKind.OPENED:
        assert decision.cycle is not None and step.evaluation is not None
        payload = SlaOpenedV1.model_validate(
            {
                **facts,
                "priority": step.evaluation.priority,
                "cycle": decision.cycle.number,
                "opened_at": from_us(decision.cycle.start),
            }
        )
    else:
        clock = decision.clock
        assert clock is not None
        common = {
            **facts,
            "priority": clock.priority,
            "clock": clock.name,
            "cycle": clock.cycle,
            "target_seconds": clock.target / US,
            "deadline": optional_time(clock.deadline),
            "revision": decision.revision,
            "decided_at": from_us(now),
        }
        if decision.kind is DecisionKind.WARNING:
            payload = SlaWarningV1.model_validate({**common, "threshold": decision.threshold})
        elif decision.kind is DecisionKind.MISSED:
            payload = SlaMissedV1.model_validate(common)
        elif decision.kind is DecisionKind.RETRACTED:
            assert decision.retracted is not None
            payload = SlaRetractedV1.model_validate(
                {**common, "retracted": decision.retracted, "reason": decision.reason}
            )
        else:
            assert clock.stop is not None
            reached = {
                **common,
                "reached_at": from_us(clock.stop),
                "elapsed_business_seconds": clock.elapsed_business / US,
                "elapsed_wall_seconds": clock.elapsed_wall / US,
            }
            if decision.kind is DecisionKind.MET:
                payload = SlaMetV1.model_validate(reached)
            else:
                late = clock.deadline is not None and clock.stop > clock.deadline
                payload = SlaStoppedV1.model_validate({**reached, "late": late})
    return encode_event(
        payload,
        event_id=derived_id(*decision.id_parts(handoff.handoff_id)),
        key=handoff.handoff_id,
        producer=PRODUCER,
        occurred_at=from_us(decision.at),
        recorded_at=from_us(now),
        correlation_id=handoff.case_id,
        causation_id=cause,
    )


def status_row(step: Step, book: Book) -> bytes | None:
    """The status table record of a handoff (HandoffStatusV1 JSON), None once forgotten."""
    handoff = step.handoff
    head = handoff.head
    evaluation = step.evaluation
    if step.forgotten or head is None or evaluation is None:
        return None
    standard = book.standards[head.standard_key]
    row = HandoffStatusV1.model_validate(
        {
            "case_id": handoff.case_id,
            "kind": head.kind,
            "from_process": head.from_process,
            "to_process": head.to_process,
            "priority": evaluation.priority,
            "state": evaluation.state,
            "route_id": standard.route_id,
            "standard_version": standard.version,
            "clocks": [
                ClockStatusV1.model_validate(
                    {
                        "clock": c.name,
                        "cycle": c.cycle,
                        "stage": c.stage,
                        "outcome": c.outcome,
                        "started_at": from_us(c.start),
                        "deadline": optional_time(c.deadline),
                        "stopped_at": optional_time(c.stop if c.stop is not None else c.void_at),
                        "target_seconds": c.target / US,
                    }
                )
                for c in evaluation.clocks
            ],
            "as_of": from_us(evaluation.now),
        }
    )
    return row.__pydantic_serializer__.to_json(row, by_alias=True)
