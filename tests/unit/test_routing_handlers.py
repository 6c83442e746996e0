"""The routing consumer's handler: opening events get route and standard, the rest pass on,
unroutable events are rejected (to the dead-letter topic) and counted by a closed-set reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from routing.adapters.mapfile import parse_map_text
from routing.domain.versioning import next_map
from routing.handlers import MapState, RejectedCounter, RouteEvents
from shared.contracts import Priority
from shared.events import (
    Envelope,
    HandoffAcceptedV1,
    HandoffOpeningV1,
    HandoffSubmittedV1,
    SlaOpenedV1,
    make_envelope,
)
from shared.kafka import Rejected
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


@pytest.fixture
def handler() -> tuple[RouteEvents, RejectedCounter]:
    state = MapState()
    state.install(next_map(parse_map_text(MAP), None, now=NOW, source="t"))
    rejected = RejectedCounter(CollectorRegistry())
    return RouteEvents(state, "t.handoff.routed.v1", rejected), rejected


async def test_opening_event_gets_route_and_standard(
    handler: tuple[RouteEvents, RejectedCounter],
) -> None:
    route_events, _ = handler
    raw = envelope(handoff(priority=Priority.P1))
    (out,) = await route_events(raw)
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
    (out,) = await route_events(raw)
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
        await route_events(envelope(opening))
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
        await route_events(envelope(opened))
    assert caught.value.code == "unexpected-event"
    # Not a routing verdict: only the consumer's "invalid" count sees it.
    assert all(rejected.counter.labels(r.value)._value.get() == 0 for r in RejectReason)
