"""The routing consumer's handler: opening events get route and standard, the rest pass on,
unroutable events are rejected (to the dead-letter topic) and counted by a closed-set reason;
open handoffs are remembered, a completion opens the next handoff of its chain, a rejection
asks the supplier's contacts to be told."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from routing.adapters.mapfile import parse_map_text
from routing.domain.chain import HandoffFacts
from routing.domain.versioning import next_map
from routing.handlers import (
    ChainCounter,
    HandoffBook,
    MapState,
    Notices,
    NotificationCounters,
    RejectedCounter,
    RouteEvents,
    RoutingTopics,
)
from shared.clock import FakeClock
from shared.contracts import Priority
from shared.events import (
    Envelope,
    HandoffAcceptedV1,
    HandoffCancelledV1,
    HandoffCompletedV1,
    HandoffOpeningV1,
    HandoffRejectedV1,
    HandoffReprioritizedV1,
    HandoffSubmittedV1,
    NotificationRequestedV1,
    NotificationsCancelledV1,
    SlaOpenedV1,
    make_envelope,
)
from shared.kafka import Outbound, Output, Rejected, TableRow
from shared.routes import RejectReason

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

MAP = """
calendars:
  office: {timezone: Europe/Brussels, hours: {mon-fri: "08:30-17:30"}}
processes:
  sales: {name: Sales, calendar: office}
  warehouse: {name: Warehouse, calendar: office}
  service-desk: {name: Service desk, calendar: office}
  it-l2-apps: {name: Apps, calendar: office}
routes:
  - {id: pick, from: sales, kind: pick-request, to: warehouse,
     standard: {targets: {P1: {response: 15m}, P3: {response: 1h}}}}
  - {id: request, from: service-desk, kind: service-request, to: it-l2-apps,
     standard: {targets: {P3: {response: 8h}, P4: {response: 16h}}}}
"""


def handoff(
    origin: str = "sales",
    kind: str = "pick-request",
    to: str | None = None,
    priority: Priority = Priority.P3,
    **attributes: Any,
) -> HandoffOpeningV1:
    return HandoffSubmittedV1(
        case_id="order-4711",
        kind=kind,
        from_process=origin,
        to_process=to,
        priority=priority,
        attributes=attributes,
    )


def envelope(payload: Any, key: str = "h-1") -> Envelope:
    return make_envelope(
        payload,
        key=key,
        producer="intake",
        occurred_at=NOW,
        recorded_at=NOW,
        correlation_id="order-4711",
    )


class MemoryFacts:
    """routing's handoff changelog, in memory: the rows written, by partition."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, HandoffFacts]] = {}

    async def load(self, partition: int) -> dict[str, HandoffFacts]:
        return dict(self.rows.get(partition, {}))

    def row(self, handoff_id: str, facts: HandoffFacts | None, partition: int) -> TableRow:
        if facts is None:
            self.rows.get(partition, {}).pop(handoff_id, None)
        else:
            self.rows.setdefault(partition, {})[handoff_id] = facts
        return TableRow(
            "t.routing.handoffs.v1", handoff_id.encode(), b"" if facts else None, partition
        )


TOPICS = RoutingTopics(
    raw="t.handoff.events.v1",
    routed="t.handoff.routed.v1",
    handoffs="t.routing.handoffs.v1",
    outbox="t.routing.notifications.v1",
)


def route_events(
    text: str = MAP, store: MemoryFacts | None = None, max_depth: int = 20
) -> tuple[RouteEvents, RejectedCounter, ChainCounter]:
    state = MapState()
    state.install(next_map(parse_map_text(text), None, now=NOW, source="t"))
    registry = CollectorRegistry()
    rejected, chains = RejectedCounter(registry), ChainCounter(registry)
    store = store or MemoryFacts()
    handler = RouteEvents(
        state,
        TOPICS,
        rejected,
        book=HandoffBook(store),
        store=store,
        chains=chains,
        notices=Notices(TOPICS.outbox, FakeClock(NOW), NotificationCounters(registry)),
        clock=FakeClock(NOW),
        max_depth=max_depth,
        sla_url="http://sla",
    )
    return handler, rejected, chains


@pytest.fixture
def handler() -> tuple[RouteEvents, RejectedCounter]:
    events, rejected, _ = route_events()
    return events, rejected


async def test_opening_event_gets_route_and_standard(
    handler: tuple[RouteEvents, RejectedCounter],
) -> None:
    route_events, _ = handler
    raw = envelope(handoff(priority=Priority.P1))
    out, row = await route_events(raw, 0)
    assert isinstance(out, Outbound) and isinstance(row, TableRow)
    assert (row.topic, row.key, row.partition) == ("t.routing.handoffs.v1", b"h-1", 0)
    assert out.topic == "t.handoff.routed.v1"
    assert out.envelope.route is not None
    assert out.envelope.route.to_process == "warehouse"
    assert out.envelope.producer == "routing"
    # Same id, key and payload: downstream de-duplication and ordering still hold.
    assert (out.envelope.event_id, out.envelope.key, out.envelope.data) == (
        raw.event_id,
        raw.key,
        raw.data,
    )
    decoded = Envelope.from_bytes(out.envelope.to_bytes())
    assert decoded.route == out.envelope.route


async def test_later_lifecycle_events_pass_through_unrouted(
    handler: tuple[RouteEvents, RejectedCounter],
) -> None:
    route_events, _ = handler
    raw = envelope(HandoffAcceptedV1(actor="jan"))
    (out,) = await route_events(raw, 0)
    assert isinstance(out, Outbound)
    assert out.envelope.route is None
    assert out.envelope.producer == "routing"
    assert out.envelope.model_dump(exclude={"producer"}) == raw.model_dump(exclude={"producer"})


@pytest.mark.parametrize(
    ("opening", "code"),
    [
        (handoff(origin="nobody"), "unknown-process"),
        (handoff(kind="nothing"), "unknown-kind"),
        (handoff("sales", "pick-request", to="it-l2-apps"), "no-route"),
    ],
)
async def test_unroutable_event_is_rejected_and_counted_by_reason(
    handler: tuple[RouteEvents, RejectedCounter], opening: HandoffOpeningV1, code: str
) -> None:
    route_events, rejected = handler
    with pytest.raises(Rejected) as caught:
        await route_events(envelope(opening), 0)
    assert caught.value.code == code
    assert rejected.counter.labels(code)._value.get() == 1
    others = [r.value for r in RejectReason if r.value != code]
    assert all(rejected.counter.labels(o)._value.get() == 0 for o in others)


async def test_decision_event_on_the_raw_topic_is_rejected(
    handler: tuple[RouteEvents, RejectedCounter],
) -> None:
    route_events, rejected = handler
    opened = SlaOpenedV1(
        case_id="c",
        kind="k",
        from_process="a",
        to_process="b",
        priority=Priority.P3,
        cycle=1,
        route_id="r",
        standard_version=1,
        opened_at=NOW,
    )
    with pytest.raises(Rejected) as caught:
        await route_events(envelope(opened), 0)
    assert caught.value.code == "unexpected-event"
    # Not a routing verdict: only the consumer's "invalid" count sees it.
    assert all(rejected.counter.labels(r.value)._value.get() == 0 for r in RejectReason)


CHAIN_MAP = """
calendars:
  office: {timezone: Europe/Brussels, hours: {mon-fri: "08:30-17:30"}}
processes:
  sales:
    name: Sales
    calendar: office
    owner: {name: Sofie, webhook: "http://hooks.test/sales"}
  warehouse: {name: Warehouse, calendar: office}
  shipping: {name: Shipping, calendar: office}
x-std: &std {targets: {P1: {response: 15m}, P3: {response: 1h}}}
routes:
  - {id: pick, from: sales, kind: pick-request, to: warehouse, standard: *std,
     next: [{kind: shipment, to: shipping}]}
  - {id: ship, from: warehouse, kind: shipment, to: shipping, standard: *std}
"""


def lifecycle(payload: Any, key: str, event_id: str) -> Envelope:
    return make_envelope(
        payload, key=key, producer="intake", occurred_at=NOW, recorded_at=NOW, event_id=event_id
    )


def only(outputs: Sequence[Output], topic: str) -> list[Envelope]:
    return [o.envelope for o in outputs if isinstance(o, Outbound) and o.topic == topic]


def rows(outputs: Sequence[Output]) -> list[TableRow]:
    return [o for o in outputs if isinstance(o, TableRow)]


async def test_completion_opens_the_next_handoff_of_the_case_on_the_raw_topic() -> None:
    events, _, chains = route_events(CHAIN_MAP)
    await events(envelope(handoff(attributes_note="x"), key="po-1"), 0)
    done = await events(lifecycle(HandoffCompletedV1(actor="lead"), "po-1", "po-1-done"), 0)

    (opened,) = only(done, TOPICS.raw)
    assert (opened.event_type, opened.key, opened.producer) == (
        "handoff.submitted",
        "po-1+1",
        "routing",
    )
    assert (opened.correlation_id, opened.causation_id) == ("order-4711", "po-1-done")
    assert opened.occurred_at == NOW  # the next team's clock starts at the completion
    assert opened.chain is not None
    assert opened.chain.model_dump() == {
        "root": "po-1",
        "depth": 1,
        "previous": "po-1",
        "route_id": "pick",
    }
    assert opened.data == {
        "case_id": "order-4711",
        "kind": "shipment",
        "from": "warehouse",
        "to": "shipping",
        "priority": "P3",
        "attributes": {"attributes_note": "x"},
    }
    # The completed handoff is forgotten (a tombstone) and the completion itself passes on.
    assert [(r.key, r.value) for r in rows(done)] == [(b"po-1", None)]
    assert [e.event_type for e in only(done, TOPICS.routed)] == ["handoff.completed"]
    assert chains.counter.labels("opened")._value.get() == 1


async def test_a_replayed_completion_opens_the_same_handoff_with_the_same_event() -> None:
    # Another instance, after a crash before the commit: it restores what was written.
    store = MemoryFacts()
    first, _, _ = route_events(CHAIN_MAP, store)
    await first(envelope(handoff(), key="po-1"), 0)
    completion = lifecycle(HandoffCompletedV1(), "po-1", "po-1-done")
    before = store.rows[0].copy()
    opened = only(await first(completion, 0), TOPICS.raw)
    store.rows[0] = before  # the tombstone was never acknowledged
    second, _, _ = route_events(CHAIN_MAP, store)
    again = only(await second(completion, 0), TOPICS.raw)
    assert [(e.key, e.event_id, e.data) for e in again] == [
        (e.key, e.event_id, e.data) for e in opened
    ]


async def test_the_chained_handoff_is_routed_under_its_own_route_and_remembers_its_depth() -> None:
    store = MemoryFacts()
    events, _, chains = route_events(CHAIN_MAP, store, max_depth=1)
    await events(envelope(handoff(), key="po-1"), 0)
    (opened,) = only(await events(lifecycle(HandoffCompletedV1(), "po-1", "c1"), 0), TOPICS.raw)
    routed, row = await events(opened, 1)
    assert isinstance(routed, Outbound) and routed.envelope.route is not None
    assert routed.envelope.route.standard.route_id == "ship"
    assert routed.envelope.chain == opened.chain
    assert isinstance(row, TableRow) and row.partition == 1
    assert (store.rows[1]["po-1+1"].root, store.rows[1]["po-1+1"].depth) == ("po-1", 1)
    # `ship` has no next step: the case's path ends there.
    done = await events(lifecycle(HandoffCompletedV1(), "po-1+1", "c2"), 1)
    assert only(done, TOPICS.raw) == []
    assert chains.counter.labels("end")._value.get() == 1


async def test_a_chain_stops_at_the_depth_bound() -> None:
    looping = CHAIN_MAP.replace(
        "  - {id: ship, from: warehouse, kind: shipment, to: shipping, standard: *std}",
        "  - {id: ship, from: warehouse, kind: shipment, to: shipping, standard: *std,\n"
        "     next: [{kind: invoice, to: sales}]}\n"
        "  - {id: invoice, from: shipping, kind: invoice, to: sales, standard: *std}",
    )
    store = MemoryFacts()
    events, _, chains = route_events(looping, store, max_depth=1)
    await events(envelope(handoff(), key="po-1"), 0)
    (opened,) = only(await events(lifecycle(HandoffCompletedV1(), "po-1", "c1"), 0), TOPICS.raw)
    await events(opened, 0)
    done = await events(lifecycle(HandoffCompletedV1(), "po-1+1", "c2"), 0)
    assert only(done, TOPICS.raw) == []
    assert chains.counter.labels("depth-limit")._value.get() == 1


async def test_the_next_handoff_takes_the_priority_the_completed_one_ended_with() -> None:
    events, _, _ = route_events(CHAIN_MAP)
    await events(envelope(handoff(), key="po-1"), 0)
    (row,) = rows(
        await events(lifecycle(HandoffReprioritizedV1(priority=Priority.P1), "po-1", "r"), 0)
    )
    assert row.value is not None
    (opened,) = only(await events(lifecycle(HandoffCompletedV1(), "po-1", "c"), 0), TOPICS.raw)
    assert opened.data["priority"] == "P1"


async def test_a_cancelled_handoff_is_forgotten_and_opens_nothing() -> None:
    events, _, chains = route_events(CHAIN_MAP)
    await events(envelope(handoff(), key="po-1"), 0)
    out = await events(lifecycle(HandoffCancelledV1(reason="order withdrawn"), "po-1", "x"), 0)
    assert [(r.key, r.value) for r in rows(out)] == [(b"po-1", None)]
    assert only(out, TOPICS.raw) == []
    later = await events(lifecycle(HandoffCompletedV1(), "po-1", "c"), 0)
    assert only(later, TOPICS.raw) == []
    assert chains.counter.labels("unknown-handoff")._value.get() == 1


async def test_a_partition_is_restored_before_its_first_record_is_handled() -> None:
    store = MemoryFacts()
    store.rows[3] = {
        "po-9": HandoffFacts(
            case_id="order-9",
            kind="pick-request",
            from_process="sales",
            to_process="warehouse",
            priority=Priority.P2,
            route_id="pick",
            root="po-9",
        )
    }
    events, _, _ = route_events(CHAIN_MAP, store)
    (opened,) = only(await events(lifecycle(HandoffCompletedV1(), "po-9", "c9"), 3), TOPICS.raw)
    assert (opened.key, opened.correlation_id, opened.data["priority"]) == (
        "po-9+1",
        "order-9",
        "P2",
    )


async def test_a_rejection_asks_for_the_suppliers_owner_and_cancels_pending_warnings() -> None:
    events, _, _ = route_events(CHAIN_MAP)
    await events(envelope(handoff(), key="po-1"), 0)
    rejection = lifecycle(
        HandoffRejectedV1(reason="no delivery address", actor="jan"), "po-1", "rj"
    )
    out = await events(rejection, 0)
    notices = [o for o in out if isinstance(o, Outbound) and o.topic == TOPICS.outbox]
    assert {type(o.envelope.payload) for o in notices} == {
        NotificationRequestedV1,
        NotificationsCancelledV1,
    }
    assert all(o.partition_key == b"po-1" for o in notices)
    (request,) = [
        o.envelope.payload
        for o in notices
        if isinstance(o.envelope.payload, NotificationRequestedV1)
    ]
    assert (request.team, request.recipient, request.webhook, request.reason.value) == (
        "sales",
        "Sofie",
        "http://hooks.test/sales",
        "rejection",
    )
    assert request.body["rejection_reason"] == "no delivery address"
    assert request.body["status_url"] == "http://sla/v1/handoffs/po-1"
