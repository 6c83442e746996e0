"""sla's read side without Kafka: the status rows the use case writes, materialised by the
table every instance keeps, answered by the queries -- whoever owns the handoffs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from builders import T0, event, route
from shared.calendar import to_us
from shared.clock import FakeClock
from shared.contracts import RouteV1
from shared.events import Envelope, Outcome
from sla.adapters.status_table import StatusTable, Timeline
from sla.handlers import PartitionClocks
from sla.queries import BadCursor, Filters, SlaQueries

US = 1_000_000
DAY = 86400 * US


class Deployment:
    """Two partitions' use cases writing into one status table (as two instances would)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.partitions = [PartitionClocks(30 * DAY, DAY, 60 * US) for _ in range(2)]
        self.table = StatusTable()
        self.queries = SlaQueries(self.table, clock)

    def send(self, *events: Envelope) -> None:
        now = to_us(self.clock.now())
        for e in events:
            part = self.partitions[hash(e.key) % 2]
            for key, row in part.apply([e], now).status:
                self.table.put(key, row)

    def tick(self) -> None:
        now = to_us(self.clock.now())
        for part in self.partitions:
            while (written := part.tick(now)) is not None:
                for key, row in written.status:
                    self.table.put(key, row)


def via(frm: str, to: str) -> RouteV1:
    return route(from_process=frm, to_process=to, route_id=f"{frm}-{to}")


def in_case(e: Envelope, case: str) -> Envelope:
    return Envelope.model_validate(
        e.model_copy(update={"data": {**e.data, "case_id": case}}).model_dump()
    )


def test_a_handoff_is_answered_from_its_row_brought_to_the_readers_now() -> None:
    clock = FakeClock(T0)
    d = Deployment(clock)
    d.send(event("submitted", "h1", T0))
    clock.advance(timedelta(minutes=45))  # nothing written since: the reader extrapolates
    status = d.queries.handoff("h1")
    assert status is not None
    response = next(c for c in status.clocks if c.status.clock == "response")
    assert response.elapsed_business == 45 * 60 * US and response.used_ratio == 0.75
    assert response.warnings_passed((50, 75)) == [50, 75] and response.outcome is None
    clock.advance(timedelta(minutes=20))
    status = d.queries.handoff("h1")
    assert status is not None and status.breached  # past the deadline, whoever decided it
    assert d.queries.handoff("never-seen") is None


def test_lists_come_from_the_indexes_most_urgent_first() -> None:
    clock = FakeClock(T0)
    d = Deployment(clock)
    d.send(
        event("submitted", "a", T0, via=route(response="30m", resolution="4h")),
        event("submitted", "b", T0, via=route(response="2h", resolution="8h")),
        event("submitted", "c", T0, via=via("sales", "warehouse")),
        event("submitted", "done", T0),
        event("completed", "done", T0 + timedelta(minutes=5)),
    )
    count, items = d.queries.listed("open", Filters(), 10)
    assert count == 3 and [i.handoff_id for i in items] == ["a", "c", "b"]
    clock.advance(timedelta(minutes=40))
    count, items = d.queries.listed("overdue", Filters(), 10)
    assert [(i.handoff_id, i.clock.clock) for i in items] == [("a", "response")]
    count, items = d.queries.listed("at-risk", Filters(), 10)
    assert [i.handoff_id for i in items] == ["c"]  # 40 of 60 minutes: past 50 %
    count, items = d.queries.listed("open", Filters(to_process="warehouse"), 10)
    assert [i.handoff_id for i in items] == ["c"]
    count, items = d.queries.listed("open", Filters(), 1)
    assert count == 3 and len(items) == 1


def test_closed_handoffs_are_listed_latest_first_a_page_at_a_time() -> None:
    clock = FakeClock(T0 + timedelta(days=3))
    d = Deployment(clock)
    for i in range(7):
        start = T0 + timedelta(hours=10 * i)
        late = i % 3 == 0  # resolution (4h) missed
        to = "warehouse" if i % 2 else "billing"
        d.send(
            event("submitted", f"h{i}", start, via=via("sales", to)),
            event("completed", f"h{i}", start + timedelta(hours=5 if late else 1)),
        )
    d.send(event("submitted", "still-open", T0))
    page, after = d.queries.closed(
        Filters(), since=None, until=None, outcome=None, cursor=None, limit=3
    )
    assert [c.handoff_id for c in page] == ["h6", "h5", "h4"] and after is not None
    rest, end = d.queries.closed(
        Filters(), since=None, until=None, outcome=None, cursor=after, limit=10
    )
    assert [c.handoff_id for c in rest] == ["h3", "h2", "h1", "h0"] and end is None
    missed, _ = d.queries.closed(
        Filters(), since=None, until=None, outcome=Outcome.MISSED, cursor=None, limit=10
    )
    assert [c.handoff_id for c in missed] == ["h6", "h3", "h0"]
    pair, _ = d.queries.closed(
        Filters("sales", "warehouse"), since=None, until=None, outcome=None, cursor=None, limit=9
    )
    assert [c.handoff_id for c in pair] == ["h5", "h3", "h1"]
    period, _ = d.queries.closed(
        Filters(),
        since=to_us(T0 + timedelta(hours=11)),  # h1 closed at 11:00
        until=to_us(T0 + timedelta(hours=31)),  # h3 closed at 35:00, h2 at 21:00
        outcome=None,
        cursor=None,
        limit=10,
    )
    assert [c.handoff_id for c in period] == ["h2", "h1"]
    with pytest.raises(BadCursor):
        d.queries.closed(Filters(), since=None, until=None, outcome=None, cursor="x", limit=1)


def test_a_case_is_read_from_its_own_rows_and_tells_ping_pong_from_returns() -> None:
    clock = FakeClock(T0 + timedelta(hours=5))
    d = Deployment(clock)
    hops = [("desk", "l2"), ("l2", "desk"), ("desk", "l3"), ("l3", "l2")]
    for n, (frm, to) in enumerate(hops):
        at = T0 + timedelta(hours=n)
        d.send(in_case(event("submitted", f"c-{n}", at, via=via(frm, to)), "INC-1"))
        d.send(event("completed", f"c-{n}", at + timedelta(hours=1)))
    d.send(in_case(event("submitted", "other", T0, via=via("desk", "l2")), "INC-2"))
    found = d.queries.case("INC-1")
    assert found is not None
    view, statuses = found
    assert set(statuses) == {"c-0", "c-1", "c-2", "c-3"}
    assert view.path == ["desk", "l2", "desk", "l3", "l2"]
    assert [r.handoff_id for r in view.ping_pongs] == ["c-1"]  # l2 -> desk right after desk -> l2
    assert [r.handoff_id for r in view.returns] == ["c-1", "c-3"]  # back to l2 after leaving it
    assert d.queries.case("INC-3") is None


def test_a_forgotten_handoff_leaves_every_index() -> None:
    table = StatusTable()
    d = Deployment(FakeClock(T0))
    d.table = table
    d.send(in_case(event("submitted", "h", T0), "K"), event("completed", "h", T0))
    assert "h" in table.entries and table.by_case == {"K": ["h"]} and len(table.closed) == 1
    table.put(b"h", None)
    assert not table.entries and not table.by_case and not len(table.closed)
    assert not len(table.active) and not table.active_by_pair


def test_timeline_orders_by_instant_then_id_and_pages_from_a_cursor() -> None:
    line = Timeline()
    for instant, hid in [(5, "b"), (5, "a"), (1, "z"), (9 * 3600 * US, "late"), (5, "c")]:
        line.add(instant, hid)
    assert list(line.ascending()) == [
        (1, "z"),
        (5, "a"),
        (5, "b"),
        (5, "c"),
        (9 * 3600 * US, "late"),
    ]
    assert list(line.descending((5, "c"))) == [(5, "b"), (5, "a"), (1, "z")]
    line.remove(5, "b")
    assert [h for _, h in line.ascending(5)] == ["a", "c", "late"]


def test_a_row_that_is_no_status_row_is_counted_and_skipped() -> None:
    table = StatusTable()
    table.put(b"x", b'{"not": "a row"}')
    assert table.unreadable == 1 and not table.entries
