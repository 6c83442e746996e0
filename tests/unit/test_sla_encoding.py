"""What sla writes to Kafka is exactly what the shared contracts say, and its changelog
round-trips a handoff."""

from __future__ import annotations

from builders import T0, event
from shared.calendar import to_us
from shared.contracts import ClockName
from shared.events import Envelope, HandoffStatusV1, SlaDecisionV1, SlaOpenedV1
from sla.adapters import changelog
from sla.domain.book import Book, Step
from sla.handlers import PartitionClocks, decision_event, status_row
from sla_harness import US, Ev, Run


def eventful_run() -> Run:
    """A run that emits every kind of decision: opened, warning, missed, retracted, met,
    stopped -- and leaves marks on the handoff."""
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(70)  # warnings, then the response deadline passes
    run.send(Ev("accepted", 50, "a"), arrive=71)  # in time after all: retracted + met
    run.send(Ev("paused", 80, "p"), Ev("resumed", 90, "r"), Ev("completed", 300, "c"))
    return run


def test_every_decision_kind_decodes_as_its_contract() -> None:
    run = eventful_run()
    kinds = set()
    for step in run.steps:
        for decision in step.decisions:
            encoded = decision_event(step, decision, run.book, run.now, "cause-1")
            envelope = Envelope.from_bytes(encoded.value)  # validates envelope and payload
            assert envelope.event_type == encoded.event_type == f"sla.{decision.kind.value}"
            assert envelope.event_id == encoded.event_id
            assert envelope.key == "h-1" and envelope.causation_id == "cause-1"
            assert dict(encoded.headers)["ce_id"] == encoded.event_id.encode()
            payload = envelope.payload
            assert isinstance(payload, SlaOpenedV1 | SlaDecisionV1)
            assert payload.from_process == "service-desk" and payload.to_process == "it-l2"
            if isinstance(payload, SlaDecisionV1):
                assert decision.clock is not None
                assert payload.clock is decision.clock.name
                assert payload.revision == decision.revision
            kinds.add(decision.kind.value)
    assert kinds == {"opened", "warning", "missed", "retracted", "met", "stopped"}


def test_status_rows_decode_as_the_status_contract() -> None:
    run = eventful_run()
    for step in run.steps:
        value = status_row(step, run.book)
        assert value is not None
        row = HandoffStatusV1.model_validate_json(value)
        assert {c.clock for c in row.clocks} == {ClockName.RESPONSE, ClockName.RESOLUTION}
    forgotten = Step(run.steps[-1].handoff, None, [], forgotten=True)
    assert status_row(forgotten, run.book) is None


def test_changelog_record_round_trips_a_handoff() -> None:
    run = eventful_run()
    original = run.book.handoffs["h-1"]
    assert original.marks  # the interesting case: emitted marks to carry over
    restored = changelog.decode("h-1", changelog.encode(original), Book(US, US))
    assert restored.facts == original.facts
    assert restored.opened() == original.opened()
    assert restored.head == original.head and restored.case_id == original.case_id
    assert restored.priority == original.priority and restored.due == original.due
    assert restored.marks == original.marks and restored.wake == original.wake
    assert restored.stream_wake == original.stream_wake
    assert restored.seen == original.seen and restored.closed_seen == original.closed_seen
    key, value = changelog.standard_record(run.std, original.head.standard_key)
    assert changelog.decode_standard(key, value) == (original.head.standard_key, run.std)


def test_derived_ids_are_standard_uuid5_and_stable() -> None:
    import uuid

    from shared.events import _ID_NAMESPACE, derived_id

    for parts in [("h-1", "s", "response", "missed", "0"), ("x",), ("ü", "", "τ")]:
        assert derived_id(*parts) == str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


def test_fast_instant_text_equals_the_envelope_format() -> None:
    from datetime import UTC, datetime

    from shared.calendar import to_us
    from shared.events import utc_text, utc_text_us

    for instant in [
        datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=UTC),
        datetime(1990, 1, 1, tzinfo=UTC),
    ]:
        assert datetime.fromisoformat(utc_text_us(to_us(instant))) == instant
        assert datetime.fromisoformat(utc_text(instant)) == instant


class _Record:
    def __init__(self, key: bytes, value: bytes | None, offset: int = 0) -> None:
        self.key, self.value, self.offset = key, value, offset
        self.topic, self.partition, self.headers = "t.sla.state.v1", 0, []


def test_the_stream_time_survives_a_restore() -> None:
    book = Book(US, US)
    key, value = changelog.stream_record(1_772_442_000_000_000)
    assert changelog.load(book, [_Record(key, value)]) == 0
    assert book.stream_time == 1_772_442_000_000_000


def test_records_of_the_previous_formats_are_still_read() -> None:
    run = eventful_run()
    handoff = run.book.handoffs["h-1"]
    current = changelog.encode(handoff)
    header = changelog._HEADER.unpack_from(current)
    v1 = changelog._HEADER_V1.pack(1, header[1], header[5], header[6])
    restored = changelog.decode("h-1", v1 + current[changelog._HEADER.size :], Book(US, US))
    assert restored.facts == handoff.facts and restored.wake == handoff.wake
    assert restored.seen is None  # decided by the wall clock, as before
    v2 = changelog._HEADER_V2.pack(2, *header[1:7])
    restored = changelog.decode("h-1", v2 + current[changelog._HEADER.size :], Book(US, US))
    assert restored.facts == handoff.facts and restored.seen == handoff.seen
    assert restored.waiting is None


def test_the_events_an_orphan_keeps_survive_a_restore() -> None:
    part = PartitionClocks(US, 3600 * US, US)
    orphan = [event("accepted", "h-o", T0), event("rated", "h-o", T0)]
    part.apply(orphan, to_us(T0), [(3, orphan[0].to_bytes()), (9, orphan[1].to_bytes())])
    original = part.book.handoffs["h-o"]
    restored = changelog.decode("h-o", changelog.encode(original), Book(US, US))
    assert restored.waiting == [(3, orphan[0].to_bytes()), (9, orphan[1].to_bytes())]
    assert restored.facts == original.facts and restored.wake == original.wake
