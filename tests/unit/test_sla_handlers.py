"""sla's use case: routed events and now in, what to write out -- no Kafka, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from builders import T0, event, route
from shared.calendar import to_us
from shared.events import Envelope
from sla.handlers import PartitionClocks

US = 1_000_000
DAY = 86400 * US


def clocks() -> PartitionClocks:
    return PartitionClocks(retention_us=DAY, orphan_retention_us=DAY, idle_us=60 * US)


def types(written_decisions: list, handoff_id: str) -> list[str]:  # type: ignore[type-arg]
    return [e.event_type for e in written_decisions if e.key == handoff_id.encode()]


def test_an_event_whose_clocks_cannot_be_computed_is_rejected_and_the_batch_goes_on() -> None:
    late_2199 = datetime(2199, 12, 20, tzinfo=UTC)
    long_route = route(response="1h", resolution="87000h")
    events = [
        event("submitted", "h-bad", late_2199, via=long_route),
        event("submitted", "h-ok", T0),
    ]
    part = clocks()
    written = part.apply(events, to_us(T0))
    assert [(i, code) for i, code, _ in written.rejected] == [(0, "uncomputable")]
    assert "1990..2199" in written.rejected[0][2]
    assert "h-bad" not in part.book.handoffs
    assert types(written.decisions, "h-ok") == ["sla.opened"]


def test_a_later_event_that_makes_the_clocks_uncomputable_leaves_the_handoff_as_it_was() -> None:
    part = clocks()
    part.apply([event("submitted", "h-x", T0), event("paused", "h-x", T0)], to_us(T0))
    before = part.book.handoffs["h-x"].packed
    resumed = event("resumed", "h-x", datetime(2199, 12, 31, 23, 0, tzinfo=UTC))
    written = part.apply([resumed, event("accepted", "h-x", T0 + timedelta(minutes=5))], to_us(T0))
    assert [code for _, code, _ in written.rejected] == ["uncomputable"]
    assert types(written.decisions, "h-x")[:1] == ["sla.met"]  # the accepted one went on
    assert len(part.book.handoffs["h-x"].facts) == 3
    assert part.book.handoffs["h-x"].packed != before


def test_an_unrouted_opening_event_is_rejected_not_kept() -> None:
    unrouted = event("submitted", "h-u", T0).model_copy(update={"route": None})
    written = clocks().apply([Envelope.model_validate(unrouted.model_dump())], to_us(T0))
    assert [code for _, code, _ in written.rejected] == ["unrouted"]


HOUR = 3600 * US


def history(handoff_id: str, start: datetime, *steps: tuple[str, int]) -> list[Envelope]:
    """A handoff's events `(kind, minutes after start)`, as a backfill writes them."""
    return [event(kind, handoff_id, start + timedelta(minutes=m)) for kind, m in steps]


def test_a_breach_found_in_history_is_not_counted_as_a_detection_delay() -> None:
    part = clocks()
    now = T0 + timedelta(days=30)
    old = history("h-old", T0, ("submitted", 0), ("accepted", 90), ("completed", 600))
    written = part.apply(old, to_us(now))
    assert types(written.decisions, "h-old").count("sla.missed") == 2
    assert written.missed == []  # years of "delay" would only be the age of the history
    part.apply([event("submitted", "h-live", now)], to_us(now))
    due = part.tick(to_us(now + timedelta(hours=1, seconds=1)))
    assert due is not None and types(due.decisions, "h-live") == ["sla.missed"]
    assert due.missed == [to_us(now + timedelta(hours=1))]


def test_retention_of_a_closed_handoff_counts_from_when_sla_learned_of_the_close() -> None:
    part = clocks()
    now = T0 + timedelta(days=30)
    part.apply(history("h-c", T0, ("submitted", 0), ("completed", 30)), to_us(now))
    assert part.tick(to_us(now + timedelta(hours=1))) is None
    assert "h-c" in part.book.handoffs  # closed 30 days ago, learned of just now
    forgotten = part.tick(to_us(now) + DAY)
    assert forgotten is not None and forgotten.status == [(b"h-c", None)]
    assert "h-c" not in part.book.handoffs


def test_open_clocks_of_a_quiet_history_are_decided_once_the_idle_time_has_passed() -> None:
    part = clocks()
    now = to_us(T0 + timedelta(days=2))
    written = part.apply(history("h-q", T0, ("submitted", 0)), now)
    assert types(written.decisions, "h-q") == ["sla.opened"]
    assert part.next_wake() == now + 60 * US  # the idle time, not a deadline long past
    assert part.tick(now + 30 * US) is None
    quiet = part.tick(now + 60 * US)
    assert quiet is not None and quiet.stream_time == now + 60 * US
    assert types(quiet.decisions, "h-q") == ["sla.missed", "sla.missed"]  # no stale warnings


def test_settling_events_that_arrive_in_one_batch_decide_the_clock_once() -> None:
    part = clocks()
    now = to_us(T0 + timedelta(days=1))
    batch = [
        event("submitted", "h-x", T0),
        event("submitted", "h-y", T0 + timedelta(hours=2)),  # the stream passes h-x's deadline
        event("accepted", "h-x", T0 + timedelta(minutes=50)),  # ...before h-x's response came
    ]
    written = part.apply(batch, now)
    assert types(written.decisions, "h-x") == [
        "sla.opened",
        "sla.warning",  # resolution at 50 %: the stream reached it
        "sla.met",  # the response: no missed then retracted within the batch
        "sla.stopped",
    ]
    assert [key for key, _ in written.status] == [b"h-x", b"h-y"]  # one row per handoff
    assert len(written.changed) == 2


def test_the_same_events_split_over_two_batches_net_to_the_same_outcomes() -> None:
    part = clocks()
    now = to_us(T0 + timedelta(days=1))
    first = part.apply(
        [event("submitted", "h-x", T0), event("submitted", "h-y", T0 + timedelta(hours=2))], now
    )
    second = part.apply([event("accepted", "h-x", T0 + timedelta(minutes=50))], now)
    kinds = types(first.decisions, "h-x") + types(second.decisions, "h-x")
    assert kinds.count("sla.missed") == kinds.count("sla.retracted") == 1
    assert kinds.count("sla.met") == 1


def raw_of(events: list[Envelope], first_offset: int = 0) -> list[tuple[int, bytes]]:
    return [(first_offset + i, e.to_bytes()) for i, e in enumerate(events)]


def test_events_of_a_handoff_that_never_opens_are_given_up_as_they_came_after_the_retention() -> (
    None
):
    part = clocks()
    now = to_us(T0)
    orphan = [event("accepted", "h-o", T0), event("completed", "h-o", T0 + timedelta(hours=1))]
    written = part.apply(orphan, now, raw_of(orphan, first_offset=40))
    assert written.rejected == [] and written.abandoned == []  # its opening may still come
    assert part.tick(now + DAY - US) is None
    given_up = part.tick(now + DAY)
    assert given_up is not None
    assert given_up.abandoned == [("h-o", raw_of(orphan, first_offset=40))]
    assert "h-o" not in part.book.handoffs


def test_an_opening_that_comes_late_applies_the_waiting_events_and_abandons_nothing() -> None:
    part = clocks()
    now = to_us(T0)
    accepted = [event("accepted", "h-l", T0 + timedelta(minutes=5))]
    part.apply(accepted, now, raw_of(accepted))
    assert part.book.handoffs["h-l"].waiting == raw_of(accepted)
    submitted = [event("submitted", "h-l", T0)]
    written = part.apply(submitted, now + US, raw_of(submitted, first_offset=1))
    assert types(written.decisions, "h-l")[:2] == ["sla.opened", "sla.met"]
    assert part.book.handoffs["h-l"].waiting is None
    for later in range(1, 40):
        due = part.tick(now + later * HOUR)
        assert due is None or due.abandoned == []


def test_a_duplicate_orphan_event_is_kept_once() -> None:
    part = clocks()
    accepted = [event("accepted", "h-d", T0)]
    part.apply(accepted, to_us(T0), raw_of(accepted))
    part.apply(accepted, to_us(T0), raw_of(accepted, first_offset=7))
    assert part.book.handoffs["h-d"].waiting == raw_of(accepted)
