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
    return PartitionClocks(retention_us=DAY, orphan_retention_us=DAY)


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
