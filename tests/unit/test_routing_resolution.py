"""Route resolution: who receives a handoff and under which standard, or why nobody can."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from routing.adapters.mapfile import parse_map_text, read_map_file
from routing.domain.versioning import next_map
from routing.settings import DEFAULT_MAP
from shared.contracts import ClockName, Priority, ProcessMapV1
from shared.events import HandoffOpeningV1, HandoffSubmittedV1
from shared.routes import (
    NoRoute,
    RejectReason,
    Router,
    UnknownKind,
    UnknownProcess,
    when_matches,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

MAP = """
calendars:
  office: {timezone: Europe/Brussels, hours: {mon-fri: "08:30-17:30"}}
processes:
  sales: {name: Sales, calendar: office}
  credit-control: {name: Credit control, calendar: office}
  warehouse: {name: Warehouse, calendar: office}
  service-desk: {name: Service desk, calendar: office}
  it-l2-apps: {name: Apps, calendar: office}
  it-l2-network: {name: Network, calendar: office}
x-all: &all {P1: {response: 15m}, P2: {response: 30m}, P3: {response: 1h}, P4: {response: 2h}}
routes:
  - {id: credit-check, from: sales, kind: credit-check, to: credit-control,
     standard: {targets: *all}}
  - {id: credit-check-country, from: sales, kind: credit-check, to: credit-control,
     when: {country: BE}, standard: {targets: *all}}
  - {id: credit-check-key-account-be, from: sales, kind: credit-check, to: credit-control,
     when: {segment: key-account, country: BE}, standard: {targets: *all}}
  - {id: credit-check-segment, from: sales, kind: credit-check, to: credit-control,
     when: {segment: key-account}, standard: {targets: *all}}
  - {id: pick, from: sales, kind: pick-request, to: warehouse, standard: {targets: *all}}
  - {id: incident-apps, from: service-desk, kind: incident, to: it-l2-apps,
     standard: {targets: *all}}
  - {id: incident-network, from: service-desk, kind: incident, to: it-l2-network,
     standard: {targets: *all}}
  - {id: rush, from: service-desk, kind: rush, to: it-l2-apps,
     when: {urgent: true, floor: 2}, standard: {targets: *all}}
  - {id: request, from: service-desk, kind: service-request, to: it-l2-apps,
     standard: {targets: {P3: {response: 8h}, P4: {response: 16h}}}}
"""


def published(text: str = MAP) -> ProcessMapV1:
    return next_map(parse_map_text(text), None, now=NOW, source="test").map


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(published())


def handoff(
    origin: str = "sales",
    kind: str = "credit-check",
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


def test_route_is_found_by_from_and_kind(router: Router) -> None:
    route = router.resolve(handoff(kind="pick-request"))
    assert (route.from_process, route.kind, route.to_process) == (
        "sales",
        "pick-request",
        "warehouse",
    )
    assert route.standard.route_id == "pick"
    assert route.standard.version == 1


def test_route_without_when_is_the_fallback(router: Router) -> None:
    assert router.resolve(handoff(country="FR")).standard.route_id == "credit-check"


def test_most_specific_when_route_wins(router: Router) -> None:
    both = handoff(country="BE", segment="key-account")
    assert router.resolve(both).standard.route_id == "credit-check-key-account-be"


def test_equally_specific_routes_fall_back_to_file_order() -> None:
    two_key_route = (
        "  - {id: credit-check-key-account-be, from: sales, kind: credit-check, "
        "to: credit-control,\n"
        "     when: {segment: key-account, country: BE}, standard: {targets: *all}}\n"
    )
    assert two_key_route in MAP
    router = Router(published(MAP.replace(two_key_route, "")))
    # Both one-key routes match; credit-check-country comes first in the file.
    both = handoff(country="BE", segment="key-account")
    assert router.resolve(both).standard.route_id == "credit-check-country"


def test_first_route_of_a_kind_is_the_default_receiver(router: Router) -> None:
    route = router.resolve(handoff("service-desk", "incident"))
    assert route.to_process == "it-l2-apps"


def test_a_named_receiver_selects_its_route(router: Router) -> None:
    route = router.resolve(handoff("service-desk", "incident", to="it-l2-network"))
    assert route.to_process == "it-l2-network"
    assert route.standard.route_id == "incident-network"


def test_when_values_compare_as_text(router: Router) -> None:
    assert (
        router.resolve(handoff("service-desk", "rush", urgent=True, floor="2")).standard.route_id
        == "rush"
    )
    assert (
        router.resolve(handoff("service-desk", "rush", urgent="true", floor=2.0)).standard.route_id
        == "rush"
    )


@pytest.mark.parametrize(
    ("when", "attributes", "expected"),
    [
        ({"urgent": True}, {"urgent": 1}, False),  # True == 1 in Python, not here
        ({"floor": 2}, {"floor": "02"}, False),
        ({"country": "BE"}, {"country": "be"}, False),
        ({"country": "BE"}, {}, False),
        ({}, {"anything": "x"}, True),
    ],
)
def test_when_matching_is_exact(
    when: dict[str, Any], attributes: dict[str, Any], expected: bool
) -> None:
    assert when_matches(when, attributes) is expected


def test_unknown_supplying_process_is_rejected(router: Router) -> None:
    with pytest.raises(UnknownProcess) as caught:
        router.resolve(handoff(origin="sale"))
    assert caught.value.reason is RejectReason.UNKNOWN_PROCESS
    assert str(caught.value) == (
        "unknown supplying process from='sale'; did you mean 'sales'? (known: credit-control, "
        "it-l2-apps, it-l2-network, sales, service-desk, warehouse)"
    )
    assert caught.value.field == "from"


def test_unknown_receiving_process_is_rejected(router: Router) -> None:
    with pytest.raises(UnknownProcess, match="unknown receiving process to='payroll'"):
        router.resolve(handoff(to="payroll"))


def test_unknown_kind_names_the_kinds_that_exist(router: Router) -> None:
    with pytest.raises(UnknownKind) as caught:
        router.resolve(handoff(kind="invoice-request"))
    assert caught.value.reason is RejectReason.UNKNOWN_KIND
    assert str(caught.value) == (
        "no route of kind 'invoice-request' from 'sales' "
        "(kinds from 'sales': credit-check, pick-request)"
    )


def test_named_receiver_without_a_route_is_no_route(router: Router) -> None:
    with pytest.raises(NoRoute) as caught:
        router.resolve(handoff(kind="pick-request", to="credit-control"))
    assert caught.value.reason is RejectReason.NO_ROUTE
    assert "(this kind goes to: warehouse)" in str(caught.value)


def test_unmatched_when_is_no_route(router: Router) -> None:
    with pytest.raises(
        NoRoute,
        match=r"matches the handoff's attributes \(conditions: rush: urgent=true, floor=2\)",
    ):
        router.resolve(handoff("service-desk", "rush", urgent=False, floor=2))


def test_priority_without_targets_is_routed_without_clocks(router: Router) -> None:
    route = router.resolve(handoff("service-desk", "service-request", priority=Priority.P1))
    assert route.standard.targets.get(Priority.P1) is None
    assert route.standard.target(Priority.P1, ClockName.RESPONSE) is None


def test_the_example_map_routes_its_flows() -> None:
    router = Router(next_map(read_map_file(DEFAULT_MAP), None, now=NOW, source="x").map)
    cases = [
        (handoff("sales", "credit-check"), "credit-control", "credit-check"),
        (
            handoff("sales", "credit-check", segment="key-account"),
            "credit-control",
            "credit-check-key-account",
        ),
        (handoff("credit-control", "pick-request"), "warehouse", "released-order"),
        (
            handoff("warehouse", "shipment", **{"service-level": "express"}),
            "shipping",
            "shipment-express",
        ),
        (handoff("shipping", "invoice-request"), "billing", "invoice-request"),
        (handoff("dept-managers", "payroll-input"), "payroll", "payroll-input"),
        (handoff("hr", "new-hire"), "payroll", "new-hire"),
        (handoff("service-desk", "incident", priority=Priority.P1), "it-l2-apps", "incident-apps"),
        (
            handoff("service-desk", "incident", category="network"),
            "it-l2-network",
            "incident-network",
        ),
        (
            handoff("service-desk", "incident", to="it-l2-network", category="network"),
            "it-l2-network",
            "incident-network",
        ),
        (handoff("it-l2-apps", "incident"), "service-desk", "incident-return-apps"),
        (handoff("service-desk", "heartbeat", priority=Priority.P1), "it-l2-network", "heartbeat"),
    ]
    for opening, receiver, route_id in cases:
        route = router.resolve(opening)
        assert (route.to_process, route.standard.route_id) == (receiver, route_id)
    fr = router.resolve(handoff("dept-managers", "payroll-input")).standard.calendar
    assert (fr.id, fr.timezone) == ("fr-payroll", "Europe/Paris")
