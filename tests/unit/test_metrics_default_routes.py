"""metrics with default routes: a pair a route names is listed; a pair only a group or `*`
route carries joins the catalog, with its targets and objective, when it shows up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

import builders as b
from metrics.adapters.instruments import CatalogGauges, Instruments
from metrics.domain.catalog import Catalog
from metrics.domain.pairs import PairMemory
from metrics.domain.shards import Shard
from metrics.domain.status import StatusBoard
from metrics.handlers import MetricsService
from shared.contracts import ProcessMapV1, ProcessV1, RouteSpecV1
from shared.kafka import ProcessedCounter

TEAMS = [f"team-{i:03d}" for i in range(200)]


def default_map(version: int = 1, *, any_route: bool = True) -> ProcessMapV1:
    routes = [
        RouteSpecV1.model_validate(
            {
                "id": "listed",
                "from": "team-000",
                "kind": "work",
                "to": "team-001",
                "standard": b.standard("listed"),
            }
        ),
        RouteSpecV1.model_validate(
            {
                "id": "from-desks",
                "from": "desks",
                "kind": "work",
                "to": "team-002",
                "standard": b.standard(
                    "from-desks", targets={b.Priority.P1: ("5m", "1h")}, objective=0.99
                ),
            }
        ),
    ]
    if any_route:
        routes.append(
            RouteSpecV1.model_validate(
                {
                    "id": "to-l2",
                    "from": "*",
                    "kind": "work",
                    "to": "team-002",
                    "standard": b.standard("to-l2"),
                }
            )
        )
    return ProcessMapV1(
        version=version,
        published_at=b.T0,
        calendars=(b.ALWAYS,),
        processes=tuple(ProcessV1(id=t, name=t, calendar=b.ALWAYS.id) for t in TEAMS),
        groups={"desks": ("team-010", "team-011")},
        routes=tuple(routes),
    )


def test_only_pairs_a_route_names_are_listed() -> None:
    catalog = Catalog.from_map(default_map())
    assert catalog.pairs == (("team-000", "team-001"),)
    assert catalog.implies("team-150", "team-002")  # `*`
    assert catalog.implies("team-010", "team-002")  # the group
    assert not catalog.implies("team-002", "team-002")  # never to itself
    assert not catalog.implies("team-150", "team-003")  # no route goes there
    assert not catalog.implies("team-000", "team-001")  # listed already


def test_an_implied_pair_takes_the_strictest_of_the_default_routes_that_carry_it() -> None:
    catalog = Catalog.from_map(default_map()).with_pairs([("team-010", "team-002")])
    assert catalog.pairs[-1] == ("team-010", "team-002")
    # P1 response: 5m from the group route beats the `*` route's 15m.
    assert catalog.targets[("team-010", "team-002", "P1", "response")] == 300
    assert catalog.objectives[("team-010", "team-002", "response")] == 0.99
    other = Catalog.from_map(default_map()).with_pairs([("team-150", "team-002")])
    assert other.targets[("team-150", "team-002", "P1", "response")] == 900


def service() -> MetricsService:
    svc = MetricsService(
        Instruments(),
        StatusBoard(),
        PairMemory(100),
        ProcessedCounter(CollectorRegistry()),
        shard=Shard(),
        changelog_topic="metrics.state.v1",
        map_topic="routing.processmap.v1",
        status_topic="sla.status.v1",
    )
    for key, value in b.map_records(default_map()):
        svc.on_process_map(key, value)
    return svc


def text_of(svc: MetricsService) -> str:
    instruments = svc.instruments
    assert isinstance(instruments, Instruments)
    gauges = CatalogGauges(lambda: svc.catalog, Shard(), lambda: instruments.in_use)
    return b"".join([*instruments.render(False), *gauges.render(False)]).decode()


def test_a_pair_carried_by_a_default_route_is_labelled_when_it_shows_up() -> None:
    svc = service()
    before = text_of(svc)
    assert 'from_team="team-150"' not in before
    svc.handle(b.opened("h1", "team-150", "team-002", priority="P1"), ("t", 0))
    svc.prepare()
    svc.committed()
    after = text_of(svc)
    assert (
        'handoff_opened_total{from_team="team-150",to_team="team-002",priority="P1"} 1.0' in after
    )
    # Only what occurred: no other priority; the target of the priority in use, the objective.
    assert 'to_team="team-002",priority="P4"' not in after
    assert (
        'handoff_target_seconds{from_team="team-150",to_team="team-002",priority="P1",'
        'milestone="response"} 900.0' in after
    )
    assert (
        'handoff_slo_objective_ratio{from_team="team-150",to_team="team-002",'
        'milestone="response"}' in after
    )
    # Only the pair that showed up, not the 199 others `*` could carry.
    assert after.count('to_team="team-002",priority="P1"}') == 1


def test_implied_pairs_stay_while_the_next_map_still_routes_them() -> None:
    svc = service()
    svc.handle(b.opened("h1", "team-150", "team-002"), ("t", 0))
    for key, value in b.map_records(default_map(2)):
        svc.on_process_map(key, value)
    assert ("team-150", "team-002") in svc.catalog.pairs
    for key, value in b.map_records(default_map(3, any_route=False)):
        svc.on_process_map(key, value)
    assert ("team-150", "team-002") not in svc.catalog.pairs
