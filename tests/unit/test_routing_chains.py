"""Handoffs that chain along the map: which step a completion opens, with which ids, where a
chain ends, and what the map checker refuses (loops, steps nobody carries)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from routing.adapters.mapfile import parse_map_text, read_map_file
from routing.domain.chain import (
    ChainEnd,
    HandoffFacts,
    NextHandoff,
    chained_id,
    facts_of,
    next_handoff,
)
from routing.domain.processmap import InvalidProcessMap, ProcessMapDraft
from routing.domain.versioning import next_map
from routing.settings import DEFAULT_MAP
from shared.contracts import Priority, ProcessMapV1
from shared.events import HandoffSubmittedV1
from shared.routes import Router

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def published(draft: ProcessMapDraft) -> ProcessMapV1:
    return next_map(draft, None, now=NOW, source="test").map


def walk(pmap: ProcessMapV1, first: HandoffSubmittedV1, max_depth: int = 20) -> list[Any]:
    """Route `first`, complete it, route what that opens, ... until the chain ends: the
    (handoff id, from, to, route id) of each step, then the reason it ended."""
    router = Router(pmap)
    routes = {r.id: r for r in pmap.routes}
    handoff_id, payload, chain = "po-4711", first, None
    steps: list[Any] = []
    while True:
        route = router.route_of(payload)
        steps.append((handoff_id, payload.from_process, route.to_process, route.id))
        facts = facts_of(handoff_id, payload, route.to_process, route.id, chain)
        following = next_handoff(handoff_id, facts, routes.get(route.id), max_depth)
        if not isinstance(following, NextHandoff):
            steps.append(following)
            return steps
        handoff_id, payload, chain = following.handoff_id, following.payload, following.chain


def order(**attributes: Any) -> HandoffSubmittedV1:
    return HandoffSubmittedV1.model_validate(
        {
            "case_id": "order-4711",
            "kind": "pick-request",
            "from": "sales",
            "priority": "P2",
            "attributes": attributes,
        }
    )


EXAMPLE = published(read_map_file(DEFAULT_MAP))


def test_example_order_to_cash_chains_sales_warehouse_shipping_billing() -> None:
    assert walk(EXAMPLE, order()) == [
        ("po-4711", "sales", "warehouse", "pick-request"),
        ("po-4711+1", "warehouse", "shipping", "shipment"),
        ("po-4711+2", "shipping", "billing", "invoice-request"),
        ChainEnd.END,
    ]


def test_example_order_needing_a_credit_check_goes_through_credit_control_first() -> None:
    assert walk(EXAMPLE, order(credit_check=True)) == [
        ("po-4711", "sales", "credit-control", "credit-hold"),
        ("po-4711+1", "credit-control", "warehouse", "released-order"),
        ("po-4711+2", "warehouse", "shipping", "shipment"),
        ("po-4711+3", "shipping", "billing", "invoice-request"),
        ChainEnd.END,
    ]


def test_next_handoffs_keep_case_priority_and_attributes_so_routes_still_choose() -> None:
    steps = walk(EXAMPLE, order(**{"service-level": "express"}))
    assert steps[1] == ("po-4711+1", "warehouse", "shipping", "shipment-express")
    router, routes = Router(EXAMPLE), {r.id: r for r in EXAMPLE.routes}
    facts = HandoffFacts(
        case_id="order-4711",
        kind="pick-request",
        from_process="sales",
        to_process="warehouse",
        priority=Priority.P1,
        route_id="pick-request",
        attributes={"service-level": "express"},
        root="po-4711",
    )
    following = next_handoff("po-4711", facts, routes["pick-request"], 20)
    assert isinstance(following, NextHandoff)
    assert following.payload.case_id == "order-4711"
    assert following.payload.priority is Priority.P1
    assert following.payload.attributes == {"service-level": "express"}
    assert following.chain.model_dump() == {
        "root": "po-4711",
        "depth": 1,
        "previous": "po-4711",
        "route_id": "pick-request",
    }
    assert router.route_of(following.payload).id == "shipment-express"


def test_a_repeated_completion_opens_the_same_handoff_with_the_same_event_id() -> None:
    routes = {r.id: r for r in EXAMPLE.routes}
    facts = facts_of("po-1", order(), "warehouse", "pick-request", None)
    first = next_handoff("po-1", facts, routes["pick-request"], 20)
    again = next_handoff("po-1", facts, routes["pick-request"], 20)
    assert first == again
    assert isinstance(first, NextHandoff) and first.handoff_id == "po-1+1"


FLOW = """
calendars:
  office: {timezone: Europe/Brussels, hours: {mon-fri: "08:30-17:30"}}
processes:
  a: {name: A, calendar: office}
  b: {name: B, calendar: office}
  c: {name: C, calendar: office}
  d: {name: D, calendar: office}
x-std: &std {targets: {P3: {response: 1h, resolution: 4h}}}
routes:
  - id: a-to-b
    from: a
    kind: work
    to: b
    next:
      - {kind: review, to: c, when: {large: true}}
      - {kind: work, to: d}
    standard: *std
  - {id: b-to-c, from: b, kind: review, to: c, standard: *std}
  - {id: b-to-d, from: b, kind: work, to: d, standard: *std}
"""


def facts_for(attributes: dict[str, Any], depth: int = 0) -> HandoffFacts:
    return HandoffFacts(
        case_id="case-1",
        kind="work",
        from_process="a",
        to_process="b",
        priority=Priority.P3,
        route_id="a-to-b",
        attributes=attributes,
        root="h",
        depth=depth,
    )


def test_the_first_step_whose_when_matches_the_completed_handoffs_attributes_opens() -> None:
    routes = {r.id: r for r in published(parse_map_text(FLOW)).routes}
    large = next_handoff("h", facts_for({"large": True}), routes["a-to-b"], 20)
    small = next_handoff("h", facts_for({"large": False}), routes["a-to-b"], 20)
    assert isinstance(large, NextHandoff) and isinstance(small, NextHandoff)
    assert (large.payload.kind, large.payload.to_process) == ("review", "c")
    assert (small.payload.kind, small.payload.to_process) == ("work", "d")
    assert large.payload.from_process == small.payload.from_process == "b"


def test_a_chain_stops_at_the_depth_bound_and_where_the_route_has_no_step() -> None:
    routes = {r.id: r for r in published(parse_map_text(FLOW)).routes}
    assert next_handoff("h", facts_for({}, depth=20), routes["a-to-b"], 20) is ChainEnd.DEPTH
    opened = next_handoff("h", facts_for({}, depth=19), routes["a-to-b"], 20)
    assert isinstance(opened, NextHandoff) and opened.chain.depth == 20
    assert next_handoff("h", facts_for({}), routes["b-to-d"], 20) is ChainEnd.END
    assert next_handoff("h", facts_for({}), None, 20) is ChainEnd.ROUTE_GONE


def test_chained_ids_read_as_the_first_handoff_plus_its_step_within_the_id_limit() -> None:
    assert chained_id("po-4711", 3) == "po-4711+3"
    long = chained_id("x" * 199, 2)
    assert len(long) == 36 and long == chained_id("x" * 199, 2) != chained_id("x" * 199, 3)


def errors_of(text: str) -> list[str]:
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text(text)
    return [str(e) for e in caught.value.errors]


def test_checker_refuses_a_chain_that_loops_back() -> None:
    looped = FLOW + (
        "  - {id: d-to-a, from: d, kind: work, to: a, standard: *std,\n"
        "     next: [{kind: work, to: b}]}\n"
    ).replace("standard: *std,\n", "standard: *std,\n")
    looped = looped.replace(
        "  - {id: b-to-d, from: b, kind: work, to: d, standard: *std}",
        "  - {id: b-to-d, from: b, kind: work, to: d, standard: *std,\n"
        "     next: [{kind: work, to: a}]}",
    )
    assert errors_of(looped) == [
        "routes[3]: the chain loops: a-to-b -> b-to-d -> d-to-a -> a-to-b (a case would be "
        "handed on forever; end the chain or break the loop)"
    ]


def test_checker_ignores_loops_that_attributes_rule_out() -> None:
    # Attributes never change along a chain: b -> c needs large=true, c -> b large=false, so
    # no handoff can go round. The same two routes without conditions do loop.
    pair = (
        "  - {id: b-c, from: b, kind: loop, to: c, when: {large: true}, standard: *std,\n"
        "     next: [{kind: loop, to: b}]}\n"
        "  - {id: c-b, from: c, kind: loop, to: b, when: {large: false}, standard: *std,\n"
        "     next: [{kind: loop, to: c}]}\n"
    )
    parse_map_text(FLOW + pair)
    unconditional = pair.replace(" when: {large: true},", "").replace(" when: {large: false},", "")
    assert errors_of(FLOW + unconditional) == [
        "routes[4]: the chain loops: b-c -> c-b -> b-c (a case would be handed on forever; "
        "end the chain or break the loop)"
    ]


def test_checker_names_every_wrong_step_with_its_path() -> None:
    text = FLOW.replace(
        "      - {kind: review, to: c, when: {large: true}}\n      - {kind: work, to: d}",
        "      - {kind: work, to: d}\n"
        "      - {kind: review, to: c}\n"
        "      - {kind: review, to: nobody}\n"
        "      - {kind: work, to: b}\n"
        "      - {kind: invoice, to: c}",
    )
    assert errors_of(text) == [
        "routes[0].next[1]: never taken: next[0] has no `when`, so it always matches first",
        "routes[0].next[2]: never taken: next[0] has no `when`, so it always matches first",
        "routes[0].next[2].to: unknown process 'nobody'",
        "routes[0].next[3]: never taken: next[0] has no `when`, so it always matches first",
        "routes[0].next[3].to: the next handoff leaves 'b': it goes to another process, "
        "not back to itself",
        "routes[0].next[4]: never taken: next[0] has no `when`, so it always matches first",
        "routes[0].next[4]: no route carries a 'invoice' handoff from 'b' to 'c': add one, "
        "or fix the step",
    ]


def test_checker_does_not_repeat_the_error_of_a_route_that_would_carry_the_step() -> None:
    broken = FLOW.replace(
        "{id: b-to-d, from: b, kind: work, to: d,", "{id: b-to-d, from: b, kind: work, to: dd,"
    )
    assert errors_of(broken) == ["routes[2].to: unknown process 'dd' (known: a, b, c, d)"]


def test_maps_without_next_read_as_before() -> None:
    draft = parse_map_text(
        FLOW.replace(
            "    next:\n      - {kind: review, to: c, when: "
            "{large: true}}\n      - {kind: work, to: d}\n",
            "",
        )
    )
    assert all(route.next == () for route in draft.routes)
