"""Default routes: from a group of processes or from any process (`*`), the most specific
route winning (one process > group > any; then `when`; then file order)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from routing.adapters.mapfile import parse_map_text
from routing.domain.catalog import Catalog
from routing.domain.processmap import InvalidProcessMap
from routing.domain.versioning import next_map
from shared.contracts import ProcessMapV1
from shared.events import HandoffOpeningV1, HandoffSubmittedV1
from shared.routes import NoRoute, Router, UnknownKind, origins_of

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

HEAD = """
calendars:
  office: {timezone: Europe/Brussels, hours: {mon-fri: "08:30-17:30"}}
processes:
  desk-a: {name: Desk A, calendar: office}
  desk-b: {name: Desk B, calendar: office}
  desk-c: {name: Desk C, calendar: office}
  l2: {name: Second line, calendar: office}
  l2-network: {name: Network, calendar: office}
  coordinator: {name: Coordinator, calendar: office}
groups:
  desks: [desk-a, desk-b]
  everyone-l2: [l2, l2-network, coordinator]
x-t: &t {targets: {P1: {response: 15m}, P2: {response: 30m}, P3: {response: 1h}}}
routes:
"""

MAP = (
    HEAD
    + """
  - {id: any-incident, from: "*", kind: incident, to: l2, standard: *t}
  - {id: desks-incident, from: desks, kind: incident, to: l2, standard: *t}
  - {id: a-incident, from: desk-a, kind: incident, to: l2, standard: *t}
  - {id: any-network, from: "*", kind: incident, to: l2-network,
     when: {category: network}, standard: *t}
  - {id: l2-report, from: everyone-l2, kind: report, to: coordinator, standard: *t}
"""
)


def published(text: str = MAP) -> ProcessMapV1:
    return next_map(parse_map_text(text), None, now=NOW, source="test").map


def opening(origin: str, kind: str = "incident", **data: Any) -> HandoffOpeningV1:
    return HandoffSubmittedV1.model_validate(
        {"case_id": "c1", "kind": kind, "from": origin, "priority": "P2", **data}
    )


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(published())


def test_a_process_of_its_own_beats_its_group_which_beats_any(router: Router) -> None:
    assert router.resolve(opening("desk-a")).standard.route_id == "a-incident"
    assert router.resolve(opening("desk-b")).standard.route_id == "desks-incident"
    assert router.resolve(opening("desk-c")).standard.route_id == "any-incident"


def test_from_specificity_comes_before_when_specificity(router: Router) -> None:
    network = {"attributes": {"category": "network"}}
    # desk-a's own route wins even though the `*` route matches more `when` keys.
    assert router.resolve(opening("desk-a", **network)).to_process == "l2"
    # desk-c has only `*` routes: among them the one with `when` wins.
    assert router.resolve(opening("desk-c", **network)).to_process == "l2-network"


def test_a_named_receiver_picks_among_the_default_routes(router: Router) -> None:
    route = router.resolve(opening("desk-a", to="l2-network", attributes={"category": "network"}))
    assert route.standard.route_id == "any-network"
    assert route.from_process == "desk-a"


def test_a_default_route_never_carries_its_receiver_to_itself(router: Router) -> None:
    network = {"attributes": {"category": "network"}}
    assert router.resolve(opening("l2", **network)).to_process == "l2-network"
    with pytest.raises(NoRoute) as caught:
        router.resolve(opening("l2"))  # `*` -> l2 does not carry l2's own handoffs
    assert caught.value.field == "attributes"
    assert "any-incident" not in caught.value.message


def test_a_group_route_applies_to_its_members_but_not_its_receiver(router: Router) -> None:
    assert router.resolve(opening("l2-network", kind="report")).to_process == "coordinator"
    with pytest.raises(UnknownKind) as caught:
        router.resolve(opening("coordinator", kind="report"))
    assert "kinds from 'coordinator'" in caught.value.message
    with pytest.raises(UnknownKind) as desk:
        router.resolve(opening("desk-a", kind="report"))
    assert "incident" in desk.value.message  # the kinds desk-a does have, `*` included


def test_ties_between_default_routes_go_to_the_first_in_file_order() -> None:
    pmap = published(
        HEAD
        + """
  - {id: first, from: "*", kind: incident, to: l2, standard: *t}
  - {id: second, from: "*", kind: incident, to: l2-network, standard: *t}
"""
    )
    assert Router(pmap).resolve(opening("desk-a")).to_process == "l2"


def test_origins_of_a_route_expand_groups_and_any_without_the_receiver() -> None:
    pmap = published()
    routes = {r.id: r for r in pmap.routes}
    assert origins_of(routes["a-incident"], pmap) == ("desk-a",)
    assert origins_of(routes["desks-incident"], pmap) == ("desk-a", "desk-b")
    assert origins_of(routes["l2-report"], pmap) == ("l2", "l2-network")
    assert "l2" not in origins_of(routes["any-incident"], pmap)
    assert len(origins_of(routes["any-incident"], pmap)) == 5


def test_catalog_relations_follow_default_routes() -> None:
    catalog = Catalog(published())
    suppliers = {r.process for r in catalog.suppliers("l2")}
    assert suppliers == {"*", "desks", "desk-a"}
    assert [r.id for r in catalog.find_routes(from_process="desk-b")] == [
        "any-incident",
        "desks-incident",
        "any-network",
    ]
    assert set(catalog.upstream("l2")) == {
        "desk-a",
        "desk-b",
        "desk-c",
        "l2-network",
        "coordinator",
    }
    assert "l2-network" in catalog.downstream("desk-c")
    assert "coordinator" in catalog.downstream("desk-c")  # via l2's report route


def errors(routes: str, groups: str | None = None) -> list[str]:
    text = HEAD + routes
    if groups is not None:
        text = text.replace(
            "groups:\n  desks: [desk-a, desk-b]\n  everyone-l2: [l2, l2-network, coordinator]\n",
            groups,
        )
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text(text)
    return [str(e) for e in caught.value.errors]


def test_groups_are_checked_member_by_member() -> None:
    found = errors(
        "  - {id: r, from: desks, kind: incident, to: l2, standard: *t}\n",
        groups="groups:\n  desks: [desk-a, desk-x, desk-a, 7]\n  l2: [desk-b]\n  empty: []\n",
    )
    # desks is declared (with errors): its route gets no cascading unknown-group error.
    assert found == [
        "groups.desks[1]: unknown process 'desk-x' (known: desk-a, desk-b, desk-c, l2, "
        "l2-network, coordinator); did you mean 'desk-c'?",
        "groups.desks[2]: 'desk-a' is listed twice",
        "groups.desks[3]: expected a process id, got a number",
        "groups.l2: 'l2' is a process id too: a group needs an id of its own",
        "groups.empty: an empty group: list at least one process",
    ]


def test_a_route_goes_to_one_process_never_a_group_or_a_list() -> None:
    assert errors(
        "  - {id: r, from: desk-a, kind: incident, to: desks, standard: *t}\n"
        "  - {id: s, from: [desk-a, desk-b], kind: incident, to: l2, standard: *t}\n"
        "  - {id: u, from: nobody, kind: incident, to: l2, standard: *t}\n"
    ) == [
        "routes[0].to: 'desks' is a group: a route goes to one process",
        "routes[1].from: one process, a group id (see `groups`) or '*'; name a list in groups",
        "routes[2].from: unknown process or group 'nobody' (known: desk-a, desk-b, desk-c, l2, "
        "l2-network, coordinator, desks, everyone-l2); '*' means any process",
    ]


def test_overlapping_groups_with_the_same_conditions_are_ambiguous() -> None:
    found = errors(
        "  - {id: r1, from: desks, kind: incident, to: l2, standard: *t}\n"
        "  - {id: r2, from: both, kind: incident, to: l2, standard: *t}\n"
        "  - {id: r3, from: both, kind: incident, to: l2, when: {x: 1}, standard: *t}\n"
        '  - {id: r4, from: "*", kind: incident, to: l2, standard: *t}\n'
        '  - {id: r5, from: "*", kind: incident, to: l2, standard: *t}\n',
        groups="groups:\n  desks: [desk-a, desk-b]\n  both: [desk-b, desk-c]\n",
    )
    assert found == [
        "routes[1].from: group 'both' shares desk-b with the group of routes[0] ('r1'), same "
        "kind, to and when: ambiguous for those processes; give them a route of their own or "
        "take them out of one group",
        "routes[4]: same from, kind, to and when as routes[3] ('r4'): ambiguous, routing could "
        "not tell which standard applies",
    ]


def test_maps_without_groups_stay_valid_and_publish_no_groups() -> None:
    text = MAP.replace(
        "groups:\n  desks: [desk-a, desk-b]\n  everyone-l2: [l2, l2-network, coordinator]\n", ""
    ).split("routes:")[0]
    text += "routes:\n  - {id: r, from: desk-a, kind: incident, to: l2, standard: *t}\n"
    assert published(text).groups == {}


def test_groups_are_part_of_the_published_content() -> None:
    first = published()
    same = next_map(parse_map_text(MAP), first, now=NOW, source="test")
    assert not same.publish
    changed = MAP.replace("desks: [desk-a, desk-b]", "desks: [desk-a, desk-b, desk-c]")
    again = next_map(parse_map_text(changed), first, now=NOW, source="test")
    assert again.publish and again.map.version == 2
    assert again.map.groups["desks"] == ("desk-a", "desk-b", "desk-c")
