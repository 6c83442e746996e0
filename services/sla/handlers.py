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
    encode_payload,
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
    causes: list[str | None] = field(default_factory=list)
    """The event id that caused each decision (None: time did), in the order of `decisions`."""
    status: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    """(handoff id, HandoffStatusV1 JSON), None once the handoff is forgotten: one row per
    handoff the batch changed, its state at the end of the batch."""
    changed: list[tuple[str, Handoff | None]] = field(default_factory=list)
    """Handoffs whose changelog record is to be rewritten (None: deleted), once per batch."""
    standards: list[tuple[str, ServiceStandardV1]] = field(default_factory=list)
    """Standards this partition holds for the first time (their changelog records)."""
    stream_time: int | None = None
    """The partition's new stream time, when the batch moved it (its changelog record)."""
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    """(index of the event in the batch, code, reason): to dead-letter."""
    results: list[tuple[str, str]] = field(default_factory=list)
    """(event type, ok | duplicate | ignored) of every event not rejected."""
    missed: list[int] = field(default_factory=list)
    """Deadlines of the missed decisions sla knew of in advance (the breach-detection delay
    is theirs; a breach found in history was not late to be detected)."""
    uncomputable: list[tuple[str, str]] = field(default_factory=list)
    """(handoff id, why) of wake-ups whose clocks could not be computed: logged, counted."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(handoff id, why) of restored handoffs whose changelog record proved unreadable on
    their first use (forgotten): logged, counted."""
    abandoned: list[tuple[str, list[tuple[int, bytes]]]] = field(default_factory=list)
    """(handoff id, its events as they came) of orphans given up on: no opening event came
    within the orphan retention. To dead-letter as `unknown-handoff`."""


class _Batch:
    """The steps of one batch, gathered per handoff until the batch is written."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.decided: dict[str, list[tuple[Step, Decision, str | None]]] = {}

    def add(self, step: Step, cause: str | None) -> None:
        handoff_id = step.handoff.handoff_id
        self.steps[handoff_id] = step  # the last one: the state the tables must hold
        if step.decisions:
            decided = self.decided.setdefault(handoff_id, [])
            decided.extend((step, d, cause) for d in step.decisions)


class PartitionClocks:
    """The clocks of every handoff of one input partition."""

    def __init__(self, retention_us: int, orphan_retention_us: int, idle_us: int) -> None:
        self.book = Book(retention_us, orphan_retention_us)
        self._keys = StandardKeys()
        self._idle = idle_us
        self._last_input: int | None = None

    def loaded(self, now: int) -> None:
        """The book was rebuilt from the changelog: arm its timers."""
        self.book.rearm_all()
        self._last_input = now

    def apply(
        self,
        events: Sequence[Envelope],
        now: int,
        raw: Sequence[tuple[int, bytes]] | None = None,
    ) -> Written:
        """Record routed events (in partition order) and decide what they change. `raw` is
        each event's (offset, record value): an event for a handoff whose opening event has
        not come keeps them, to be dead-lettered as it came if that never happens.

        Each event first moves the partition's stream time to its own time, and whatever that
        makes due in history is decided before the event itself, in event-time order: what
        every event yields depends on the events before it in the partition, never on how
        they were batched. (An event refused later still moved the stream time: it is
        evidence of where the stream stands.)
        """
        out = Written()
        batch = _Batch()
        book = self.book
        stream_before = book.stream_time
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
            for due in book.stream_to(incoming.fact.at, now):
                batch.add(due, None)
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
            handoff = step.handoff
            if step.evaluation is None and handoff.head is None:
                if raw is not None:
                    handoff.waiting = [*(handoff.waiting or ()), raw[index]]
            elif handoff.waiting is not None:
                handoff.waiting = None  # its opening came: the events it kept are applied
            batch.add(step, envelope.event_id)
        if events:
            self._last_input = now
        if book.stream_time != stream_before:
            out.stream_time = book.stream_time
        self._write(batch, now, out)
        return out

    def tick(self, now: int, limit: int = 2000) -> Written | None:
        """Decide what is due by `now` (missed deadlines, warnings, forgetting), at most
        `limit` handoffs at once; None when nothing is due.

        A partition whose history has been quiet for the idle time has its stream time moved
        to now: the open clocks of that history are decided then (a backfill is over).
        """
        book = self.book
        out = Written()
        if self._idle_over(now) and book.advance_stream(now):
            out.stream_time = book.stream_time
        batch = _Batch()
        for step in book.due(now, limit=limit):
            batch.add(step, None)
        for step in book.due_stream(now, limit=limit):
            batch.add(step, None)
        out.uncomputable, book.uncomputable = book.uncomputable, []
        if (
            not batch.steps
            and not out.uncomputable
            and not book.unreadable
            and out.stream_time is None
        ):
            return None
        self._write(batch, now, out)
        return out

    def next_wake(self) -> int | None:
        """The next instant time alone changes something."""
        wake = self.book.next_wake()
        if self.book.next_stream_wake() is not None and self._last_input is not None:
            idle = self._last_input + self._idle
            wake = idle if wake is None else min(wake, idle)
        return wake

    def _idle_over(self, now: int) -> bool:
        return (
            self._last_input is not None
            and now >= self._last_input + self._idle
            and self.book.next_stream_wake() is not None
        )

    def _write(self, batch: _Batch, now: int, out: Written) -> None:
        book = self.book
        out.unreadable, book.unreadable = book.unreadable, []
        for decided in batch.decided.values():
            for step, decision, cause in _settled(decided):
                out.decisions.append(decision_event(step, decision, book, now, cause))
                out.causes.append(cause)
                seen = step.handoff.seen
                if decision.kind is DecisionKind.MISSED and (seen is None or decision.at >= seen):
                    out.missed.append(decision.at)
        for handoff_id, step in batch.steps.items():
            if step.forgotten and step.handoff.head is None:
                out.abandoned.append((handoff_id, step.handoff.waiting or []))
            out.status.append((handoff_id.encode(), status_row(step, book)))
            out.changed.append((handoff_id, None if step.forgotten else step.handoff))


def _settled(
    decided: list[tuple[Step, Decision, str | None]],
) -> list[tuple[Step, Decision, str | None]]:
    """One handoff's decisions of one batch, less each outcome the same batch retracted: when
    events that settle a clock arrive together, the clock is decided once (the pair nets to
    nothing for whoever counts outcomes minus retractions; later revisions keep their ids)."""
    emitted = {
        (d.clock.cycle_key, d.clock.name, d.revision): i
        for i, (_, d, _) in enumerate(decided)
        if d.clock is not None and d.kind in (DecisionKind.MET, DecisionKind.MISSED)
    }
    dropped: set[int] = set()
    for i, (_, d, _) in enumerate(decided):
        if d.kind is DecisionKind.RETRACTED and d.clock is not None:
            j = emitted.get((d.clock.cycle_key, d.clock.name, d.revision))
            if j is not None and j < i:
                dropped.update((i, j))
    return [x for i, x in enumerate(decided) if i not in dropped] if dropped else decided


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
    return encode_payload(
        payload,
        event_id=derived_id(*decision.id_parts(handoff.handoff_id)),
        key=handoff.handoff_id,
        producer=PRODUCER,
        occurred_at=from_us(decision.at),
        recorded_at=from_us(now),
        correlation_id=handoff.case_id,
        causation_id=cause,
        # With its nulls: a decision's `deadline` is required, null included.
        data=payload.__pydantic_serializer__.to_json(payload, by_alias=True),
    )


def status_row(step: Step, book: Book) -> bytes | None:
    """The status table record of a handoff (HandoffStatusV1 JSON), None once forgotten: all
    a reader needs to answer for it -- clocks, cycles, history, its calendar."""
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
                {
                    "clock": c.name,
                    "cycle": c.cycle,
                    "stage": c.stage,
                    "outcome": c.outcome,
                    "started_at": from_us(c.start),
                    "deadline": optional_time(c.deadline),
                    "stopped_at": optional_time(c.stop if c.stop is not None else c.void_at),
                    "target_seconds": c.target / US,
                    "priority": c.priority,
                    "elapsed_business_seconds": c.elapsed_business / US,
                    "elapsed_wall_seconds": c.elapsed_wall / US,
                    "paused_business_seconds": c.paused_business / US,
                    "warnings_at": [optional_time(at) for _, at in c.thresholds],
                }
                for c in evaluation.clocks
            ],
            "as_of": from_us(evaluation.now),
            "calendar": standard.calendar,
            "objective": standard.objective,
            "warnings": standard.warnings,
            "cycles": [
                {
                    "cycle": c.number,
                    "started_at": from_us(c.start),
                    "ended_at": optional_time(c.end),
                    "ended_by": None if c.ended_by is None else c.ended_by.name.lower(),
                }
                for c in evaluation.cycles
            ],
            "history": [
                {"type": f.type.name.lower(), "occurred_at": from_us(f.at), "event_id": f.event_id}
                for f in book.facts_of(handoff)
            ],
            "closed_at": optional_time(evaluation.closed_at),
        }
    )
    return row.__pydantic_serializer__.to_json(row, by_alias=True)
