"""What sla writes to Kafka is exactly what the shared contracts say, and its changelog
round-trips a handoff."""

from __future__ import annotations

from datetime import timedelta

from builders import T0, event
from shared.calendar import to_us
from shared.contracts import ClockName
from shared.events import Envelope, HandoffStatusV1, SlaDecisionV1, SlaOpenedV1
from sla.adapters import changelog
from sla.domain.book import Book, Step
from sla.handlers import PartitionClocks, Written, decision_event, status_row
from sla_harness import US, Ev, Run

DAY = 86400 * US


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


def _changelog_of(part: PartitionClocks) -> list[_Record]:
    """The changelog records that hold `part`'s state, as a transaction would write them."""
    book = part.book
    records = [_Record(*changelog.standard_record(s, k)) for k, s in book.standards.items()]
    records.append(_Record(*changelog.stream_record(book.stream_time)))
    records += [_Record(i.encode(), changelog.encode(h)) for i, h in book.handoffs.items()]
    return records


def _restored(part: PartitionClocks, now: int) -> PartitionClocks:
    again = PartitionClocks(DAY, DAY, 60 * US)
    assert changelog.load(again.book, _changelog_of(part)) == 0
    again.loaded(now)
    return again


def _decisions(written: Written | None) -> list[tuple[bytes, bytes]]:
    return [] if written is None else [(d.key, d.value) for d in written.decisions]


def test_a_restored_partition_decides_exactly_as_the_one_it_was_restored_from() -> None:
    part = PartitionClocks(DAY, DAY, 60 * US)
    now = to_us(T0)
    events = [event("submitted", f"h-{i}", T0 + timedelta(minutes=i)) for i in range(6)]
    events += [event("accepted", "h-1", T0 + timedelta(minutes=20))]
    events += [event("paused", "h-2", T0 + timedelta(minutes=30))]
    events += [event("accepted", "h-9", T0)]  # an orphan: no opening event yet
    part.apply(events, now)
    later = now + 90 * 60 * US  # warnings and missed responses are due by then
    again = _restored(part, now)
    # Read on first use: the restore took only what the timers need.
    assert all(h.unread is not None for h in again.book.handoffs.values())
    assert again.next_wake() == part.next_wake()
    assert _decisions(again.tick(later)) == _decisions(part.tick(later)) != []
    more = [event("accepted", "h-3", T0 + timedelta(minutes=95))]
    more += [event("submitted", "h-9", T0), event("resumed", "h-2", T0 + timedelta(minutes=96))]
    assert _decisions(again.apply(more, later)) == _decisions(part.apply(more, later)) != []
    assert {i: changelog.encode(h) for i, h in again.book.handoffs.items()} == {
        i: changelog.encode(h) for i, h in part.book.handoffs.items()
    }


def test_a_record_found_unreadable_on_first_use_is_lost_loudly_and_the_partition_goes_on() -> None:
    part = PartitionClocks(DAY, DAY, 60 * US)
    now = to_us(T0)
    part.apply([event("submitted", h, T0) for h in ("h-bad", "h-cut", "h-ok")], now)
    records = _changelog_of(part)
    for record in records:
        if record.key == b"h-bad":  # a sound header, a head that is not text
            head = changelog._HEADER.size
            record.value = record.value[:head] + b"\xff" + record.value[head + 1 :]
        if record.key == b"h-cut":  # the header promises more than the record holds
            record.value = record.value[: changelog._HEADER.size + 3]
    again = PartitionClocks(DAY, DAY, 60 * US)
    assert changelog.load(again.book, records) == 0  # found on first use, not at the restore
    again.loaded(now)
    written = again.apply([event("accepted", "h-bad", T0 + timedelta(minutes=5))], now)
    assert [h for h, _ in written.unreadable] == ["h-bad"]
    assert "unreadable: 'utf-8' codec can't decode byte 0xff" in written.unreadable[0][1]
    # Lost like a record unreadable at the restore: its later event waits as an orphan.
    assert again.book.handoffs["h-bad"].head is None
    later = now + 90 * 60 * US
    ticked = again.tick(later)
    assert ticked is not None
    assert ticked.unreadable == [
        (
            "h-cut",
            "sla changelog record unreadable: truncated: 46 bytes, its header says at least 109",
        )
    ]
    assert "h-cut" not in again.book.handoffs
    assert [(d.key, d.event_type) for d in ticked.decisions] == [(b"h-ok", "sla.missed")]


def test_a_record_of_an_unknown_format_is_unreadable_at_the_restore() -> None:
    book = Book(US, US)
    bad = [_Record(b"h-x", b'{"old": "format"}'), _Record(b"h-y", b""), _Record(b"h-z", b"\x03")]
    assert changelog.load(book, bad) == 3
    assert not book.handoffs
