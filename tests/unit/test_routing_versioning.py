"""Versioned standards: an edit makes a new version, an untouched standard keeps its version,
and a map that did not change is not published again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from builders import MemoryMapTopic
from routing.adapters.mapfile import parse_map_text
from routing.domain.versioning import Change, next_map
from routing.handlers import Provenance, put_in_force
from routing.settings import DEFAULT_MAP
from shared.clock import FakeClock
from shared.contracts import ProcessMapV1

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=3)

MAP = """
calendars:
  office:
    timezone: Europe/Brussels
    hours: {mon-fri: "08:30-12:00, 13:00-17:30"}
    holidays: {country: BE}
  always: {always_open: true}
processes:
  sales: {name: Sales, calendar: office}
  warehouse: {name: Warehouse, calendar: office}
  billing: {name: Billing, calendar: always}
routes:
  - id: pick
    from: sales
    kind: pick-request
    to: warehouse
    standard: {targets: {P1: {response: 15m, resolution: 2h}}}
  - id: invoice
    from: warehouse
    kind: invoice-request
    to: billing
    standard: {targets: {P3: {response: 4h}}}
"""


def first(text: str = MAP) -> ProcessMapV1:
    versioned = next_map(parse_map_text(text), None, now=T0, source="map.yaml")
    assert versioned.publish
    return versioned.map


def versions(pmap: ProcessMapV1) -> dict[str, int]:
    return {r.id: r.standard.version for r in pmap.routes}


def test_first_publication_starts_every_standard_and_the_map_at_version_1() -> None:
    pmap = first()
    assert pmap.version == 1
    assert pmap.published_at == T0
    assert pmap.source == "map.yaml"
    assert versions(pmap) == {"pick": 1, "invoice": 1}


def test_unchanged_map_is_not_republished() -> None:
    previous = first()
    again = next_map(parse_map_text(MAP), previous, now=T1, source="elsewhere.yaml")
    assert not again.publish
    assert again.map is previous
    assert {s.change for s in again.standards} == {Change.UNCHANGED}


def test_changed_standard_gets_next_version() -> None:
    previous = first()
    edited = MAP.replace("response: 15m", "response: 10m")
    versioned = next_map(parse_map_text(edited), previous, now=T1, source="map.yaml")
    assert versioned.publish
    assert versioned.map.version == 2
    assert versioned.map.published_at == T1
    assert versions(versioned.map) == {"pick": 2, "invoice": 1}
    pick = next(s for s in versioned.standards if s.route_id == "pick")
    assert (pick.change, pick.version, pick.previous_version) == (Change.CHANGED, 2, 1)


def test_versions_keep_counting_from_the_last_published_map() -> None:
    pmap = first()
    for response in ("10m", "20m", "30m"):
        edited = MAP.replace("response: 15m", f"response: {response}")
        pmap = next_map(parse_map_text(edited), pmap, now=T1, source="m").map
    assert pmap.version == 4
    assert versions(pmap) == {"pick": 4, "invoice": 1}


def test_new_route_starts_at_version_1() -> None:
    previous = next_map(
        parse_map_text(MAP.replace("response: 15m", "response: 5m")), first(), now=T1, source="m"
    ).map
    added = MAP.replace("response: 15m", "response: 5m") + (
        "  - {id: return, from: warehouse, kind: return, to: sales,"
        " standard: {targets: {P3: {response: 1h}}}}\n"
    )
    versioned = next_map(parse_map_text(added), previous, now=T1, source="m")
    assert versions(versioned.map) == {"pick": 2, "invoice": 1, "return": 1}
    assert versioned.map.version == 3


def test_editing_a_calendar_is_an_edit_of_the_standards_running_on_it() -> None:
    previous = first()
    edited = MAP.replace("holidays: {country: BE}", "holidays: {country: BE, dates: [2026-12-24]}")
    versioned = next_map(parse_map_text(edited), previous, now=T1, source="m")
    # pick runs on the receiver's calendar (office); invoice on billing's (always).
    assert versions(versioned.map) == {"pick": 2, "invoice": 1}


def test_moving_a_route_to_another_calendar_is_an_edit_of_its_standard() -> None:
    previous = first()
    edited = MAP.replace(
        "standard: {targets: {P1: {response: 15m, resolution: 2h}}}",
        "standard: {calendar: always, targets: {P1: {response: 15m, resolution: 2h}}}",
    )
    assert versions(next_map(parse_map_text(edited), previous, now=T1, source="m").map)["pick"] == 2


def test_a_change_outside_the_standards_publishes_the_map_but_keeps_standard_versions() -> None:
    previous = first()
    edited = MAP.replace("warehouse: {name: Warehouse,", "warehouse: {name: Warehouse Antwerp,")
    versioned = next_map(parse_map_text(edited), previous, now=T1, source="m")
    assert versioned.publish
    assert versioned.map.version == 2
    assert versions(versioned.map) == {"pick": 1, "invoice": 1}


def test_a_map_published_before_routes_had_alerting_reads_as_the_defaults() -> None:
    stored = first().model_dump_json(by_alias=True)
    written_before = stored.replace(',"alerting":{"severity":"page","window":"30d"}', "")
    assert '"alerting"' not in written_before
    old = ProcessMapV1.model_validate_json(written_before)
    assert not next_map(parse_map_text(MAP), old, now=T1, source="map.yaml").publish


def test_reordering_when_keys_or_routes_is_still_the_same_standard() -> None:
    previous = first()
    pick, invoice = MAP.split("routes:\n")[1].split("  - id: invoice")
    swapped = MAP.split("routes:\n")[0] + "routes:\n  - id: invoice" + invoice + pick
    versioned = next_map(parse_map_text(swapped), previous, now=T1, source="m")
    assert versions(versioned.map) == {"pick": 1, "invoice": 1}
    assert {s.change for s in versioned.standards} == {Change.UNCHANGED}


def test_removed_routes_are_listed() -> None:
    previous = first()
    without_invoice = MAP.split("  - id: invoice")[0]
    versioned = next_map(parse_map_text(without_invoice), previous, now=T1, source="m")
    assert versioned.removed_routes == ("invoice",)
    assert versioned.publish


async def test_put_in_force_publishes_only_when_the_map_changed() -> None:
    store, clock = MemoryMapTopic(), FakeClock(T0)
    await put_in_force(parse_map_text(MAP), Provenance("map.yaml"), store, clock)
    clock.advance(timedelta(hours=1))
    await put_in_force(parse_map_text(MAP), Provenance("map.yaml"), store, clock)
    assert [m.version for m in store.published] == [1]
    clock.advance(timedelta(hours=1))
    edited = MAP.replace("response: 4h", "response: 3h")
    current = await put_in_force(parse_map_text(edited), Provenance("map.yaml"), store, clock)
    assert [m.version for m in store.published] == [1, 2]
    assert current.map is store.published[-1]
    assert current.map.published_at == T0 + timedelta(hours=2)
    assert versions(current.map) == {"pick": 1, "invoice": 2}


def test_new_holidays_data_publishes_a_new_map_version_with_the_version_shown() -> None:
    draft = parse_map_text(DEFAULT_MAP.read_text())
    first = next_map(draft, None, now=T0, source="f", holidays_version="0.108")
    assert first.map.holidays_version == "0.108"
    same = next_map(draft, first.map, now=T0, source="f", holidays_version="0.108")
    assert not same.publish
    upgraded = next_map(draft, first.map, now=T0, source="f", holidays_version="0.109")
    assert upgraded.publish and upgraded.map.version == first.map.version + 1
    assert {s.change.value for s in upgraded.standards} == {"unchanged"}
