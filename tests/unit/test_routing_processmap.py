"""The process map file: its format, and validation that reports every error with its path."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.adapters.mapfile import MAX_DEPTH, load_yaml, parse_map_text, read_map_file
from routing.domain.processmap import InvalidProcessMap, MapError, parse_process_map
from routing.settings import DEFAULT_MAP
from shared.contracts import AlertSeverity, BudgetWindow, Priority

BASE = """
calendars:
  be-office:
    timezone: Europe/Brussels
    hours: {mon-fri: ["08:30-12:00", "13:00-17:30"]}
    holidays: {country: BE}
  24x7: {always_open: true}
processes:
  sales: {name: Sales, calendar: be-office}
  warehouse: {name: Warehouse, calendar: be-office}
  billing: {name: Billing, calendar: 24x7}
routes:
  - id: pick-request
    from: sales
    kind: pick-request
    to: warehouse
    standard:
      targets:
        P1: {response: 15m, resolution: 2h}
        P3: {response: 1h30m, resolution: 8h}
"""


def errors_of(text: str) -> list[MapError]:
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text(text)
    return list(caught.value.errors)


def messages(text: str) -> list[str]:
    return [str(e) for e in errors_of(text)]


def with_routes(routes: str) -> str:
    return BASE.split("routes:")[0] + "routes:\n" + routes


ROUTE = """
  - id: {id}
    from: {origin}
    kind: {kind}
    to: {to}
    {extra}
    standard:
      targets: {{P1: {{response: {response}, resolution: 4h}}}}
"""


def route(
    id: str = "r",
    origin: str = "sales",
    kind: str = "k",
    to: str = "warehouse",
    extra: str = "",
    response: str = "1h",
) -> str:
    return ROUTE.format(
        id=id, origin=origin, kind=kind, to=to, extra=extra or "when: {}", response=response
    )


# --------------------------------------------------------------------------- valid maps


def test_example_map_is_valid() -> None:
    draft = read_map_file(DEFAULT_MAP)
    ids = {p.id for p in draft.processes}
    assert {"sales", "credit-control", "warehouse", "shipping", "billing"} <= ids
    assert {"dept-managers", "hr", "payroll", "service-desk", "it-l2-apps", "it-l2-network"} <= ids
    assert {"be-office", "fr-payroll", "24x7"} <= {c.id for c in draft.calendars}


def test_example_map_keeps_the_heartbeat_route_the_end_to_end_tests_use() -> None:
    draft = read_map_file(DEFAULT_MAP)
    heartbeat = next(r for r in draft.routes if r.id == "heartbeat")
    assert (heartbeat.from_process, heartbeat.kind, heartbeat.to_process) == (
        "service-desk",
        "heartbeat",
        "it-l2-network",
    )
    assert heartbeat.standard.calendar.always_open
    p1 = heartbeat.standard.targets[Priority.P1]
    assert (p1.response, p1.resolution) == (timedelta(seconds=2), timedelta(seconds=4))
    assert set(heartbeat.standard.targets) == set(Priority)


def test_standard_embeds_the_receiving_process_calendar() -> None:
    draft = parse_map_text(BASE)
    (pick,) = draft.routes
    assert pick.standard.calendar.id == "be-office"
    assert pick.standard.calendar.timezone == "Europe/Brussels"
    assert pick.standard.route_id == "pick-request"
    assert pick.standard.version == 1
    assert pick.standard.targets[Priority.P3].response == timedelta(hours=1, minutes=30)
    assert pick.standard.warnings == (50, 75)
    assert pick.standard.objective == 0.95


def test_calendar_of_a_route_overrides_the_receivers() -> None:
    draft = parse_map_text(
        with_routes(route(extra="when: {}").replace("standard:", "standard:\n      calendar: 24x7"))
    )
    assert draft.routes[0].standard.calendar.id == "24x7"


def test_map_conveniences_read_like_people_write() -> None:
    text = """
calendars:
  office:
    timezone: Europe/Paris
    hours: {mon-fri: "09:00-12:30, 13:30-18:00"}
    holidays: FR
processes:
  a: {name: A, calendar: office, escalation: {name: Boss}}
  b: {name: B, calendar: office}
x-shared: &targets {P2: {response: 1h}}
routes:
  - id: r
    from: a
    kind: k
    to: b
    standard: {targets: *targets, objective: 98%, delivery: 4h}
"""
    draft = parse_map_text(text)
    (office,) = draft.calendars
    assert office.hours == {"mon-fri": ("09:00-12:30", "13:30-18:00")}
    assert office.holidays.country == "FR"
    assert draft.processes[0].escalation[0].name == "Boss"
    assert draft.routes[0].standard.objective == pytest.approx(0.98)
    assert draft.routes[0].standard.delivery == timedelta(hours=4)


def test_routes_keep_file_order() -> None:
    text = with_routes(route("first", kind="a") + route("second", kind="b") + route("third"))
    assert [r.id for r in parse_map_text(text).routes] == ["first", "second", "third"]


# --------------------------------------------------------------------------- errors with paths


def test_unknown_calendar_is_reported_with_its_path() -> None:
    text = BASE.replace(
        "billing: {name: Billing, calendar: 24x7}", "payroll: {name: P, calendar: fr-office}"
    )
    assert messages(text) == [
        "processes.payroll.calendar: unknown calendar 'fr-office' (known: be-office, 24x7)"
    ]


def test_near_miss_gets_a_suggestion() -> None:
    text = BASE.replace("to: warehouse", "to: warehuose")
    assert messages(text) == [
        "routes[0].to: unknown process 'warehuose' (known: sales, warehouse, billing); "
        "did you mean 'warehouse'?"
    ]


def test_invalid_duration_is_reported_with_its_path() -> None:
    (error,) = errors_of(BASE.replace("response: 15m", "response: 1d"))
    assert error.path == "routes[0].standard.targets.P1.response"
    assert error.reason.startswith("invalid duration '1d'")
    assert "days and weeks are ambiguous" in error.reason


def test_every_error_is_reported_at_once() -> None:
    text = """
calendars:
  office: {timezone: Mars/Olympus, hours: {mon-fri: ["08:00-12:00"]}}
processes:
  a: {name: A, calendar: office}
  b: {name: "", calendar: offfice}
routes:
  - {id: r1, from: a, kind: k, to: c, standard: {targets: {P1: {response: 2w}}}}
  - {id: r1, from: a, kind: k, to: a, standard: {targets: {P9: {response: 1h}}}}
"""
    assert [e.path for e in errors_of(text)] == [
        "calendars.office.timezone",
        "processes.b.name",
        "routes[0].to",
        "routes[0].standard.targets.P1.response",
        "routes[1].to",
        "routes[1].standard.targets.P9",
        "routes[1].id",
    ]


def test_invalid_calendar_does_not_cascade_into_unknown_calendar_errors() -> None:
    text = BASE.replace("timezone: Europe/Brussels", "timezone: Europe/Bruxelles")
    assert [e.path for e in errors_of(text)] == ["calendars.be-office.timezone"]


def test_duplicate_route_ids_are_reported() -> None:
    text = with_routes(route("same", kind="a") + route("same", kind="b"))
    assert messages(text) == ["routes[1].id: duplicate route id 'same' (first at routes[0])"]


def test_from_and_to_must_name_known_processes() -> None:
    text = with_routes(route(origin="sals", to="nowhere"))
    assert [e.path for e in errors_of(text)] == ["routes[0].from", "routes[0].to"]


def test_route_from_a_process_to_itself_is_refused() -> None:
    (error,) = errors_of(with_routes(route(origin="sales", to="sales")))
    assert error.path == "routes[0].to"
    assert "to itself" in error.reason


def test_routes_with_identical_from_kind_to_and_when_are_ambiguous() -> None:
    text = with_routes(
        route("one", extra="when: {a: 1, b: x}") + route("two", extra="when: {b: x, a: '1'}")
    )
    (error,) = errors_of(text)
    assert error.path == "routes[1]"
    assert "routes[0] ('one')" in error.reason and "ambiguous" in error.reason


def test_routes_differing_only_in_when_are_not_ambiguous() -> None:
    text = with_routes(route("plain") + route("special", extra="when: {segment: key-account}"))
    assert len(parse_map_text(text).routes) == 2


def test_ids_must_be_slugs() -> None:
    text = BASE.replace("warehouse: {name: Warehouse", "Warehouse: {name: Warehouse")
    errors = errors_of(text)
    assert errors[0] == MapError(
        "processes.Warehouse",
        "'Warehouse' is not an id: use lower-case letters, digits and '-', "
        "starting with a letter or digit",
    )


def test_unknown_field_suggests_the_near_miss() -> None:
    (error,) = errors_of(BASE.replace("targets:", "tragets: {}\n      targets:"))
    assert error.path == "routes[0].standard.tragets"
    assert error.reason.endswith("did you mean 'targets'?")


def test_alerting_defaults_to_paging_and_a_rolling_30_day_window() -> None:
    (route_,) = parse_map_text(BASE).routes
    assert route_.alerting.severity is AlertSeverity.PAGE
    assert route_.alerting.window is BudgetWindow.ROLLING_30D


def test_alerting_of_a_route_is_read_from_the_map() -> None:
    text = with_routes(route(extra="alerting: {severity: ticket, window: month}"))
    (route_,) = parse_map_text(text).routes
    assert route_.alerting.severity is AlertSeverity.TICKET
    assert route_.alerting.window is BudgetWindow.CALENDAR_MONTH


def test_invalid_alerting_is_reported_with_its_path() -> None:
    text = with_routes(route(extra="alerting: {severity: pager, windw: month}"))
    assert sorted(messages(text)) == [
        "routes[0].alerting.severity: Input should be 'page' or 'ticket'",
        "routes[0].alerting.windw: unknown field",
    ]


def test_version_is_set_by_routing_not_by_the_file() -> None:
    (error,) = errors_of(BASE.replace("targets:", "version: 3\n      targets:"))
    assert error.path == "routes[0].standard.version"


def test_objective_given_as_a_percentage_number_is_explained() -> None:
    (error,) = errors_of(BASE.replace("targets:", "objective: 95\n      targets:"))
    assert error == MapError(
        "routes[0].standard.objective", "a share between 0 and 1: write 0.95 or '95%'"
    )


def test_resolution_shorter_than_response_is_refused() -> None:
    (error,) = errors_of(
        BASE.replace("{response: 15m, resolution: 2h}", "{response: 3h, resolution: 2h}")
    )
    assert error.path == "routes[0].standard.targets.P1.resolution"


def test_a_standard_needs_targets() -> None:
    assert [
        e.path for e in errors_of(BASE.replace("P1: {response: 15m, resolution: 2h}", "P1: {}"))
    ] == ["routes[0].standard.targets.P1"]
    no_targets = BASE.split("      targets:")[0] + "      targets: {}\n"
    assert messages(no_targets) == [
        "routes[0].standard.targets: set targets for at least one priority (P1..P4)"
    ]


def test_missing_sections_and_unknown_sections_are_reported() -> None:
    assert messages("calendars: {}\nprocesse: {}\n") == [
        "processe: unknown section (expected: calendars, processes, groups, routes; keys "
        "starting with 'x-' are free, e.g. for YAML anchors)",
        "processes: missing section",
        "routes: missing section",
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (None, "(map): expected a mapping with sections calendars, processes, routes, got nothing"),
        (
            [1, 2],
            "(map): expected a mapping with sections calendars, processes, routes, got a list",
        ),
        (
            {"calendars": [], "processes": {}, "routes": []},
            "calendars: expected a mapping of calendar id -> calendar, got a list",
        ),
        (
            {"calendars": {}, "processes": {}, "routes": {"a": 1}},
            "routes: expected a list of routes, got a mapping",
        ),
    ],
)
def test_wrong_shapes_are_reported_not_crashed_on(document: object, expected: str) -> None:
    with pytest.raises(InvalidProcessMap) as caught:
        parse_process_map(document)
    assert [str(e) for e in caught.value.errors] == [expected]


def test_route_without_to_and_a_null_from_is_reported() -> None:
    with pytest.raises(InvalidProcessMap) as caught:
        parse_process_map({"calendars": {}, "processes": {}, "routes": [{"from": None}]})
    assert [e.path for e in caught.value.errors] == [
        "routes[0].id",
        "routes[0].from",
        "routes[0].kind",
        "routes[0].to",
        "routes[0].standard",
    ]


@pytest.mark.parametrize("duration", ["99999999999999h", "87841h"])
def test_duration_too_long_for_a_target_is_reported_not_crashed_on(duration: str) -> None:
    (error,) = errors_of(BASE.replace("response: 15m", f"response: {duration}"))
    assert error.path == "routes[0].standard.targets.P1.response"
    assert error.reason == "not a usable duration: at most 87840h"


@pytest.mark.parametrize(
    "duration", ["30", "1.5", ".inf", "-.inf", ".nan", "1000000000000000000000"]
)
def test_a_bare_number_is_refused_because_a_duration_carries_its_unit(duration: str) -> None:
    (error,) = errors_of(BASE.replace("response: 15m", f"response: {duration}"))
    assert error.path == "routes[0].standard.targets.P1.response"
    assert error.reason.startswith("a duration needs its unit: write e.g.")


@pytest.mark.parametrize(
    ("objective", "words"),
    [
        ("195%", "195% is not a share of handoffs"),
        ("95", "write 0.95 or '95%'"),
        ("150", "a share between 0 and 1 (e.g. 0.95)"),
        ("100%", "100% is not a share of handoffs"),
    ],
)
def test_an_objective_out_of_range_gets_a_suggestion_that_makes_sense(
    objective: str, words: str
) -> None:
    text = BASE.replace("      targets:", f"      objective: {objective}\n      targets:", 1)
    (error,) = errors_of(text)
    assert error.path == "routes[0].standard.objective" and words in error.reason


def test_the_exception_message_lists_every_error() -> None:
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text("calendars: {}\n", source="deploy/x.yaml")
    assert str(caught.value) == (
        "invalid process map deploy/x.yaml: 2 error(s)\n"
        "  processes: missing section\n"
        "  routes: missing section"
    )


# --------------------------------------------------------------------------- YAML itself


def test_duplicate_yaml_key_is_reported_with_its_line() -> None:
    text = BASE.replace("  billing:", "  sales: {name: Again, calendar: be-office}\n  billing:")
    assert messages(text) == [
        "line 11: key 'sales' given twice in one mapping (first at line 9): only one can be kept"
    ]


def test_keys_brought_by_a_merge_may_be_overridden() -> None:
    document, problems = load_yaml("base: &b {x: 1, y: 2}\nderived: {<<: *b, y: 3}\n")
    assert problems == []
    assert document["derived"] == {"x": 1, "y": 3}


def test_yaml_syntax_error_names_line_and_column() -> None:
    (error,) = errors_of("calendars:\n  a: [unclosed\nprocesses: {}\n")
    assert error.path.startswith("line ")
    assert error.reason.startswith("invalid YAML")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    (error,) = errors_of("\n".join(lines))
    assert "expands to more than" in error.reason


def test_deeply_nested_document_is_refused() -> None:
    (error,) = errors_of("[" * 5000 + "]" * 5000)
    assert error.path == "(yaml)"
    assert f"nested more than {MAX_DEPTH} levels deep" in error.reason


def test_nesting_limit_is_batons_own_whatever_the_yaml_library() -> None:
    # One level past the limit is refused with Baton's message (not the parser's), and a
    # document exactly at the limit gets past the YAML stage to the map's own checks.
    depth = MAX_DEPTH - 1  # under the top-level mapping: exactly MAX_DEPTH levels
    at_limit = errors_of("x-deep: " + "[" * depth + "]" * depth)
    assert {e.reason for e in at_limit} == {"missing section"}
    (error,) = errors_of("x-deep: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert error.reason.startswith(f"the document is nested more than {MAX_DEPTH} levels")


def test_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidProcessMap) as caught:
        read_map_file(tmp_path / "nope.yaml")
    assert str(caught.value).endswith("(file): file not found")
    assert "nope.yaml" in str(caught.value)


# --------------------------------------------------------------------------- robustness

SMALL = load_yaml(
    """
calendars:
  office: {hours: {mon-fri: ["08:30-12:00", "13:00-17:30"]}, holidays: {dates: [2026-12-24]}}
processes:
  a: {name: A, calendar: office, owner: {name: Owner}, escalation: [{name: Boss}]}
  b: {name: B, calendar: office}
routes:
  - id: r
    from: a
    kind: k
    to: b
    when: {segment: key-account}
    standard:
      targets: {P1: {response: 15m, resolution: 2h}}
      delivery: 4h
      warnings: [50, 75]
      objective: 0.95
      calendar: office
"""
)[0]


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


DELETE = object()
JUNK = st.one_of(
    st.just(DELETE),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["1d", "0s", "P5", "95%", "b", "Bad Id", "25:00-26:00", "mon-sun", "office"]),
    st.lists(st.none(), max_size=2),
    st.dictionaries(st.sampled_from(["P1", "response", "name", "x"]), st.none(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_paths(SMALL)[1:]), JUNK), min_size=1, max_size=4))
def test_any_edit_of_a_valid_map_is_valid_or_reported_never_a_crash(
    edits: list[tuple[tuple[object, ...], object]],
) -> None:
    document = copy.deepcopy(SMALL)
    for path, value in edits:
        node = document
        try:
            for key in path[:-1]:
                node = node[key]
            if value is DELETE:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced the parent
    try:
        parse_process_map(document)
    except InvalidProcessMap as exc:
        assert exc.errors
        assert all(e.path and e.reason for e in exc.errors)


def test_overlapping_intervals_ending_at_midnight_are_listed_not_crashed_on() -> None:
    text = BASE.replace(
        'hours: {mon-fri: ["08:30-12:00", "13:00-17:30"]}',
        'hours: {mon: ["08:00-24:00", "08:00-12:00"], tue-fri: ["08:30-12:00"]}',
    )
    assert any(
        m.startswith("calendars.be-office.hours: working intervals overlap on 'mon'")
        for m in messages(text)
    )


CHECKED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_calendar_without_working_time_for_two_years_is_refused() -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(3 * 366)]
    dates = ", ".join(d.isoformat() for d in days if d.weekday() < 5)
    text = BASE.replace("holidays: {country: BE}", f"holidays: {{dates: [{dates}]}}")
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text(text, checked_at=CHECKED_AT)
    found = [str(e) for e in caught.value.errors]
    assert found[0].startswith("calendars.be-office: cannot be computed on calendar 'be-office'")
    assert "no working time" in found[0]
    parse_map_text(BASE, checked_at=CHECKED_AT)  # the same map with real holidays is fine


def test_a_target_whose_deadline_falls_beyond_the_supported_years_is_refused() -> None:
    text = BASE.replace(
        'hours: {mon-fri: ["08:30-12:00", "13:00-17:30"]}', 'hours: {mon: ["08:00-08:01"]}'
    ).replace("resolution: 8h", "resolution: 87000h")
    with pytest.raises(InvalidProcessMap) as caught:
        parse_map_text(text, checked_at=CHECKED_AT)
    assert [str(e) for e in caught.value.errors] == [
        "routes[0].standard.targets.P3.resolution: cannot be computed on calendar 'be-office': "
        "deadline of calendar 'be-office' falls after 2199: supported years are 1990..2199"
    ]
