"""Escalation notifications: who of which team is told about a warning, a miss or a rejection,
when (service hours, or at once), with what body -- and what the map checker refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing.adapters.mapfile import parse_map_text
from routing.domain.catalog import Catalog
from routing.domain.chain import HandoffFacts
from routing.domain.escalation import Escalations, Planned
from routing.domain.processmap import InvalidProcessMap
from routing.domain.versioning import next_map
from shared.contracts import Frozen, Priority
from shared.events import (
    Envelope,
    HandoffRejectedV1,
    NotificationReason,
    SlaMetV1,
    SlaMissedV1,
    SlaRetractedV1,
    SlaStoppedV1,
    SlaWarningV1,
    derived_id,
    make_envelope,
)

MAP = """
calendars:
  office:
    timezone: Europe/Brussels
    hours: {mon-fri: "08:30-12:00, 13:00-17:30"}
    holidays: {country: BE}
  24x7: {timezone: UTC, always_open: true}
processes:
  sales:
    name: Sales
    calendar: office
    owner: {name: Sofie, webhook: "http://hooks.test/sofie"}
  warehouse:
    name: Warehouse
    calendar: office
    owner: {name: Lead, email: lead@example.com}
    escalation:
      - {name: Manager}
      - {name: Director, webhook: "http://hooks.test/director"}
    notify: {webhook: "http://hooks.test/warehouse", secret: wh}
  shipping:
    name: Shipping
    calendar: office
    owner: {name: Planner}
    notify: {webhook: "http://hooks.test/shipping"}
  quiet: {name: Quiet, calendar: office, owner: {name: Nobody}}
x-std: &std {targets: {P2: {response: 1h, resolution: 4h}}, warnings: [50, 75]}
routes:
  - {id: pick, from: sales, kind: pick-request, to: warehouse, standard: *std}
  - {id: ship, from: warehouse, kind: shipment, to: shipping,
     standard: {calendar: 24x7, targets: {P2: {response: 1h}}, warnings: [50, 75]}}
  - {id: hush, from: sales, kind: hush, to: quiet, standard: *std}
"""

SATURDAY = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 04:00 in Brussels: closed
MONDAY_OPEN = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # 08:30 in Brussels
FRIDAY_LATE = datetime(2026, 11, 20, 15, 45, tzinfo=UTC)  # 16:45 in Brussels


def escalations(text: str = MAP) -> Escalations:
    pmap = next_map(parse_map_text(text), None, now=SATURDAY, source="t").map
    return Escalations(Catalog(pmap), "http://sla.test/")


def sla(
    model: type[Frozen],
    *,
    route: str = "pick",
    origin: str = "sales",
    to: str = "warehouse",
    clock: str = "response",
    at: datetime = SATURDAY,
    deadline: datetime | None = None,
    handoff_id: str = "po-1",
    **extra: Any,
) -> Envelope:
    fields: dict[str, Any] = {
        "case_id": "order-4711",
        "kind": "pick-request",
        "from": origin,
        "to": to,
        "priority": "P2",
        "cycle": 1,
        "route_id": route,
        "standard_version": 1,
        "clock": clock,
        "target_seconds": 3600.0,
        "deadline": deadline or at,
        "decided_at": at,
        **extra,
    }
    payload = model.model_validate(fields)
    return make_envelope(
        payload,
        key=handoff_id,
        producer="sla",
        occurred_at=at,
        recorded_at=at,
        event_id=derived_id("test", handoff_id, model.__name__, str(extra)),
    )


def who(planned: Planned) -> list[tuple[str, str, str, int, bool, datetime]]:
    return [
        (r.reason.value, r.team, r.recipient, r.level, r.urgent, r.not_before)
        for r in planned.requests
    ]


def test_a_warning_at_75_percent_tells_the_owner_in_the_teams_service_hours() -> None:
    planned = escalations().decision(sla(SlaWarningV1, threshold=75))
    assert who(planned) == [("warning", "warehouse", "Lead", 0, False, MONDAY_OPEN)]
    (request,) = planned.requests
    assert (request.webhook, request.secret) == ("http://hooks.test/warehouse", "wh")
    assert request.decided_at == SATURDAY
    assert escalations().decision(sla(SlaWarningV1, threshold=50)).requests == []


def test_a_breach_goes_out_at_once_and_an_hour_of_business_time_later_the_next_level() -> None:
    planned = escalations().decision(sla(SlaMissedV1, at=FRIDAY_LATE, deadline=FRIDAY_LATE))
    assert who(planned) == [
        ("breach", "warehouse", "Manager", 1, True, FRIDAY_LATE),
        # 45 minutes before closing on Friday, 15 more from Monday's opening.
        ("escalation", "warehouse", "Director", 2, True, MONDAY_OPEN + timedelta(minutes=15)),
    ]
    assert [r.webhook for r in planned.requests] == [
        "http://hooks.test/warehouse",  # the Manager has no webhook of their own
        "http://hooks.test/director",
    ]


def test_a_breach_at_night_is_not_held_back_for_service_hours() -> None:
    planned = escalations().decision(sla(SlaMissedV1, at=SATURDAY, deadline=SATURDAY))
    assert who(planned)[0] == ("breach", "warehouse", "Manager", 1, True, SATURDAY)


def test_levels_a_team_lacks_fall_back_to_the_nearest_it_has() -> None:
    planned = escalations().decision(
        sla(SlaMissedV1, route="ship", origin="warehouse", to="shipping", at=SATURDAY)
    )
    # Shipping has only an owner; the ship route runs on 24x7: an hour after the deadline.
    assert who(planned) == [
        ("breach", "shipping", "Planner", 0, True, SATURDAY),
        ("escalation", "shipping", "Planner", 0, True, SATURDAY + timedelta(hours=1)),
    ]


def test_a_late_delivery_tells_the_supplier() -> None:
    planned = escalations().decision(sla(SlaWarningV1, clock="delivery", threshold=75))
    assert who(planned) == [("warning", "sales", "Sofie", 0, False, MONDAY_OPEN)]


def test_teams_reached_by_no_webhook_get_nothing_written() -> None:
    quiet: dict[str, Any] = {"route": "hush", "to": "quiet"}
    met = {"reached_at": SATURDAY, "elapsed_business_seconds": 1, "elapsed_wall_seconds": 1}
    for decision in (
        sla(SlaWarningV1, threshold=75, **quiet),
        sla(SlaMissedV1, **quiet),
        sla(SlaMetV1, **quiet, **met),
    ):
        # Sales (the supplier) has a webhook, but only for its deliveries and rejections.
        planned = escalations().decision(decision)
        assert planned.requests == [] and planned.skipped == []
    assert escalations().decision(sla(SlaMetV1, **met)).cancel is not None


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        (
            SlaMetV1,
            {"reached_at": SATURDAY, "elapsed_business_seconds": 1, "elapsed_wall_seconds": 1},
        ),
        (
            SlaStoppedV1,
            {
                "reached_at": SATURDAY,
                "elapsed_business_seconds": 1,
                "elapsed_wall_seconds": 1,
                "late": True,
            },
        ),
        (SlaRetractedV1, {"retracted": "missed", "reason": "a late event"}),
    ],
)
def test_a_milestone_or_a_retraction_cancels_what_is_pending_for_that_clock(
    model: type[Frozen], extra: dict[str, Any]
) -> None:
    planned = escalations().decision(sla(model, **extra))
    assert planned.requests == []
    assert planned.cancel is not None
    assert (planned.cancel.handoff_id, planned.cancel.clock, planned.cancel.cycle) == (
        "po-1",
        "response",
        1,
    )
    assert planned.cancel.until == SATURDAY


def test_the_same_decision_asks_for_the_same_notifications() -> None:
    decision = sla(SlaMissedV1)
    assert escalations().decision(decision) == escalations().decision(decision)
    ids = {r.notification_id for r in escalations().decision(decision).requests}
    assert len(ids) == 2


def test_a_rejection_tells_the_suppliers_owner_in_its_service_hours() -> None:
    facts = HandoffFacts(
        case_id="order-4711",
        kind="pick-request",
        from_process="sales",
        to_process="warehouse",
        priority=Priority.P2,
        route_id="pick",
    )
    rejection = make_envelope(
        HandoffRejectedV1(reason="no delivery address", actor="jan"),
        key="po-1",
        producer="intake",
        occurred_at=SATURDAY,
        recorded_at=SATURDAY,
        event_id="rj-1",
    )
    planned = escalations().rejection(rejection, rejection.payload, facts)  # type: ignore[arg-type]
    assert who(planned) == [("rejection", "sales", "Sofie", 0, False, MONDAY_OPEN)]
    assert planned.requests[0].body["summary"] == (
        "Warehouse returned pick-request handoff po-1 (case order-4711) to sales: "
        "no delivery address"
    )
    assert planned.cancel is not None and planned.cancel.clock is None


def test_the_body_names_the_handoff_case_pair_clock_deadline_and_status_links() -> None:
    decision = sla(SlaMissedV1, handoff_id="po/1#a", at=FRIDAY_LATE, deadline=FRIDAY_LATE)
    body = escalations().decision(decision).requests[0].body
    assert body == {
        "notification_id": body["notification_id"],
        "reason": "breach",
        "team": "warehouse",
        "team_name": "Warehouse",
        "level": 1,
        "role": "escalation-1",
        "recipient": {"name": "Manager"},
        "urgent": True,
        "handoff_id": "po/1#a",
        "case_id": "order-4711",
        "status_url": "http://sla.test/v1/handoffs/po%2F1%23a",
        "case_url": "http://sla.test/v1/cases/order-4711",
        "kind": "pick-request",
        "from": "sales",
        "to": "warehouse",
        "priority": "P2",
        "route_id": "pick",
        "standard_version": 1,
        "clock": "response",
        "cycle": 1,
        "target_seconds": 3600.0,
        "deadline": "2026-11-20T15:45:00Z",
        "decision_id": decision.event_id,
        "decided_at": "2026-11-20T15:45:00Z",
        "summary": "pick-request handoff order-4711 from sales to warehouse (P2) missed its "
        "response target: the deadline was 2026-11-20 16:45 Europe/Brussels",
    }


def test_route_level_steps_override_the_receiving_teams() -> None:
    text = MAP.replace(
        "  - {id: pick, from: sales, kind: pick-request, to: warehouse, standard: *std}",
        "  - {id: pick, from: sales, kind: pick-request, to: warehouse, standard: *std,\n"
        "     escalation: [{at: 50%, notify: escalation-2, urgent: true}]}",
    )
    planned = escalations(text).decision(sla(SlaWarningV1, threshold=50))
    assert who(planned) == [("warning", "warehouse", "Director", 2, True, SATURDAY)]
    assert escalations(text).decision(sla(SlaMissedV1)).requests == []
    assert all(r.reason is NotificationReason.WARNING for r in planned.requests)


def errors_of(text: str) -> list[str]:
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text(text)
    return [str(e) for e in caught.value.errors]


def test_checker_refuses_steps_naming_contacts_or_thresholds_that_do_not_exist() -> None:
    text = MAP.replace(
        '    notify: {webhook: "http://hooks.test/shipping"}',
        '    notify:\n      webhook: "http://hooks.test/shipping"\n'
        "      levels: [{at: 90%}, {at: breach, notify: escalation-1}, {at: soon}]",
    ).replace(
        "  - {id: hush, from: sales, kind: hush, to: quiet, standard: *std}",
        "  - {id: hush, from: sales, kind: hush, to: quiet, standard: *std,\n"
        "     escalation: [{at: rejected}, {at: 60%}]}",
    )
    assert (
        "processes.shipping.notify.levels[2].at: invalid moment 'soon': use a warning "
        "threshold like '75%', 'breach', 'breach+1h' (business time after the deadline) or "
        "'rejected'"
    ) in errors_of(text)
    text = text.replace(", {at: soon}", "")
    assert errors_of(text) == [
        "processes.shipping.notify.levels[0].at: no route of 'shipping' warns at 90% "
        "(their warnings: 50%, 75%)",
        "processes.shipping.notify.levels[1].notify: escalation-1 but 'shipping' has 0 "
        "escalation contact(s)",
        "routes[2].escalation[0].at: a rejection tells the supplier: give it in the "
        "supplier's notify.levels, not on the route",
        "routes[2].escalation[1].at: the route's standard warns at 50%, 75%, not at 60%",
    ]


def test_checker_refuses_a_webhook_that_is_not_an_http_url() -> None:
    text = MAP.replace('"http://hooks.test/sofie"', '"ftp://hooks.test/sofie"')
    assert errors_of(text) == [
        "processes.sales.owner.webhook: 'ftp://hooks.test/sofie' is not an http(s) URL"
    ]
