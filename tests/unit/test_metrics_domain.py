"""metrics' pure domain: catalog, decisions -> effects, the status board's open/overdue."""

from __future__ import annotations

from datetime import timedelta

import pytest

import builders as b
from metrics.domain.catalog import Catalog
from metrics.domain.effects import (
    Effect,
    Exemplar,
    Family,
    UnknownPair,
    UnknownProcess,
    announced_pair,
    effects_of,
)
from metrics.domain.pairs import PairMemory
from metrics.domain.status import StateView, StatusBoard
from shared.contracts import Priority

CATALOG = Catalog.from_map(b.process_map([("sales", "warehouse"), ("hr", "payroll")]))
T0 = b.T0
NOW = T0.timestamp()


def no_pair(_: str) -> tuple[str, str] | None:
    return None


# --------------------------------------------------------------------------- catalog


def test_catalog_lists_every_pair_priority_and_milestone_with_a_target() -> None:
    catalog = Catalog.from_map(
        b.process_map(
            [("a", "b")],
            targets={Priority.P1: ("15m", "4h"), Priority.P3: (None, "24h")},
            delivery="8h",
        )
    )
    assert catalog.pairs == (("a", "b"),)
    assert set(catalog.combos) == {
        ("a", "b", "P1", "delivery"),
        ("a", "b", "P1", "response"),
        ("a", "b", "P1", "resolution"),
        ("a", "b", "P2", "delivery"),  # delivery does not depend on the priority
        ("a", "b", "P3", "delivery"),
        ("a", "b", "P3", "resolution"),
        ("a", "b", "P4", "delivery"),
    }
    assert catalog.targets[("a", "b", "P1", "response")] == 900.0
    assert catalog.targets[("a", "b", "P3", "resolution")] == 86400.0
    assert catalog.objectives[("a", "b", "resolution")] == 0.95
    assert ("a", "b", "P2", "response") not in catalog.targets


def test_catalog_keeps_the_strictest_target_and_objective_when_routes_share_a_pair() -> None:
    loose = b.process_map([("a", "b")], targets={Priority.P1: ("1h", "8h")}, objective=0.9)
    strict = b.process_map([("a", "b")], targets={Priority.P1: ("30m", "9h")}, objective=0.99)
    routes = (
        loose.routes[0],
        strict.routes[0].model_copy(update={"id": "other", "kind": "other"}),
    )
    catalog = Catalog.from_map(loose.model_copy(update={"routes": routes}))
    assert catalog.pairs == (("a", "b"),)
    assert catalog.targets[("a", "b", "P1", "response")] == 1800.0
    assert catalog.targets[("a", "b", "P1", "resolution")] == 8 * 3600.0
    assert catalog.objectives[("a", "b", "response")] == 0.99


def test_empty_catalog_knows_no_process() -> None:
    assert not Catalog.empty().knows("sales", "warehouse")
    assert CATALOG.knows("sales", "warehouse")
    assert not CATALOG.knows("sales", "ghost")


# --------------------------------------------------------------------------- decisions


def test_opened_counts_one_per_pair_and_priority_and_zeroes_the_outcomes_it_will_decide() -> None:
    catalog = Catalog.from_map(
        b.process_map([("sales", "warehouse")], targets={Priority.P2: (None, "4h")}, delivery="1h")
    )
    env = b.opened("h1", "sales", "warehouse", priority="P2", cycle=2)
    # The misses start at 0 (so increase() sees the first one), for the clocks with a target.
    assert effects_of(env, catalog, no_pair) == [
        Effect(Family.OPENED, ("sales", "warehouse", "P2")),
        Effect(Family.OUTCOMES, ("sales", "warehouse", "P2", "delivery", "missed"), 0.0),
        Effect(Family.OUTCOMES, ("sales", "warehouse", "P2", "resolution", "missed"), 0.0),
    ]


@pytest.mark.parametrize("kind", ["met", "missed"])
def test_met_and_missed_count_one_outcome_for_the_clock(kind: str) -> None:
    env = b.decision(kind, "h1", "sales", "warehouse", priority="P1", clock="response")
    effects = effects_of(env, CATALOG, no_pair)
    assert effects[0] == Effect(Family.OUTCOMES, ("sales", "warehouse", "P1", "response", kind))


@pytest.mark.parametrize("retracted", ["met", "missed"])
def test_retraction_counts_in_its_own_counter_never_decrements(retracted: str) -> None:
    env = b.decision("retracted", "h1", "hr", "payroll", retracted=retracted)
    assert effects_of(env, CATALOG, no_pair) == [
        Effect(Family.RETRACTIONS, ("hr", "payroll", "P3", "resolution", retracted))
    ]


def test_stopped_observes_wall_duration_and_usage_with_the_handoff_as_exemplar() -> None:
    env = b.decision(
        "stopped", "h-42", "sales", "warehouse", clock="response", target_seconds=3600,
        elapsed_wall=7200, elapsed_business=2700, at=T0,
    )  # fmt: skip
    labels = ("sales", "warehouse", "response")  # no priority: the series budget
    exemplar = Exemplar("h-42", T0.timestamp())
    assert effects_of(env, CATALOG, no_pair) == [
        Effect(Family.DURATION, labels, 7200.0, exemplar),
        Effect(Family.USAGE, labels, 0.75, exemplar),
    ]


def test_an_id_too_long_for_an_exemplar_gets_none_rather_than_a_truncated_one() -> None:
    long_id = "h" * 150
    env = b.decision("stopped", long_id, "sales", "warehouse")
    assert all(e.exemplar is None for e in effects_of(env, CATALOG, no_pair))


def test_warning_changes_no_metric() -> None:
    assert effects_of(b.decision("warning", "h1", "sales", "warehouse"), CATALOG, no_pair) == []


@pytest.mark.parametrize("kind", ["met", "missed", "retracted", "stopped"])
def test_a_decision_naming_an_unknown_process_is_unlabelable(kind: str) -> None:
    env = b.decision(kind, "h1", "sales", "ghost-team")
    with pytest.raises(UnknownProcess, match="ghost-team"):
        effects_of(env, CATALOG, no_pair)
    with pytest.raises(UnknownProcess):
        effects_of(b.opened("h1", "ghost-team", "warehouse"), CATALOG, no_pair)


def test_rework_and_ratings_are_labelled_by_the_pair_learned_elsewhere() -> None:
    pairs = {"h1": ("sales", "warehouse")}
    assert effects_of(b.rejected("h1"), CATALOG, pairs.get) == [
        Effect(Family.REWORK, ("sales", "warehouse"))
    ]
    assert effects_of(b.rated("h1", 4), CATALOG, pairs.get) == [
        Effect(Family.SATISFACTION, ("sales", "warehouse"), 4.0, Exemplar("h1", NOW))
    ]


def test_rework_of_a_handoff_whose_pair_is_unknown_is_unlabelable() -> None:
    with pytest.raises(UnknownPair):
        effects_of(b.rejected("h-unknown"), CATALOG, no_pair)
    with pytest.raises(UnknownProcess):
        effects_of(b.rated("h1", 2), CATALOG, {"h1": ("sales", "ghost")}.get)


def test_other_lifecycle_events_change_nothing_but_openings_announce_their_pair() -> None:
    assert effects_of(b.accepted("h1"), CATALOG, no_pair) == []
    submitted = b.submitted("h1", "sales", "warehouse")
    assert effects_of(submitted, CATALOG, no_pair) == []
    assert announced_pair(submitted) == ("sales", "warehouse")
    assert announced_pair(b.opened("h2", "hr", "payroll")) == ("hr", "payroll")
    assert announced_pair(b.rejected("h1")) is None


def test_pair_memory_forgets_the_least_recently_told_beyond_its_size() -> None:
    memory = PairMemory(2)
    memory.remember("h1", ("a", "b"))
    memory.remember("h2", ("a", "b"))
    memory.remember("h1", ("a", "c"))  # re-told: now the most recent
    memory.remember("h3", ("a", "b"))
    assert memory.get("h2") is None
    assert memory.get("h1") == ("a", "c")
    assert len(memory) == 2


# --------------------------------------------------------------------------- status board


def hours(n: float) -> float:
    return NOW + n * 3600


def test_open_items_count_handoffs_in_state_open_only() -> None:
    board = StatusBoard()
    board.put("h1", b.status("sales", "warehouse", state="open"))
    board.put("h2", b.status("sales", "warehouse", state="open"))
    board.put("h3", b.status("sales", "warehouse", state="returned"))
    board.put("h4", b.status("sales", "warehouse", state="expected"))
    board.put("h5", b.status("sales", "warehouse", state="completed"))
    assert board.open_count(("sales", "warehouse", "P3")) == 2
    board.put("h1", b.status("sales", "warehouse", state="completed"))  # an update replaces
    board.put("h2", None)  # a tombstone forgets
    assert board.open_count(("sales", "warehouse", "P3")) == 0
    assert len(board) == 4


def test_overdue_counts_running_and_paused_clocks_whose_deadline_is_before_now() -> None:
    board = StatusBoard()
    key = ("sales", "warehouse", "P3", "resolution")
    for i, (stage, deadline_h) in enumerate(
        [("running", -2), ("paused", -1), ("running", 1), ("stopped", -5), ("cancelled", -5)]
    ):
        deadline = b.T0 + timedelta(hours=deadline_h)
        board.put(
            f"h{i}", b.status("sales", "warehouse", clocks=[("resolution", stage, None, deadline)])
        )
    assert board.overdue(key, hours(0)) == (2, hours(-2))
    assert board.overdue(key, hours(-1)) == (1, hours(-2))  # strictly before now
    assert board.overdue(key, hours(2)) == (3, hours(-2))
    assert board.overdue(key, hours(-3)) == (0, None)


def test_a_missed_clock_is_overdue_whatever_its_deadline_and_a_met_one_never() -> None:
    board = StatusBoard()
    key = ("sales", "warehouse", "P3", "response")
    later = b.T0 + timedelta(hours=5)
    earlier = b.T0 - timedelta(hours=5)
    board.put(
        "h1", b.status("sales", "warehouse", clocks=[("response", "running", "missed", later)])
    )
    board.put(
        "h2", b.status("sales", "warehouse", clocks=[("response", "running", "met", earlier)])
    )
    board.put("h3", b.status("sales", "warehouse", clocks=[("response", "paused", "missed", None)]))
    assert board.overdue(key, NOW) == (2, later.timestamp())


def test_overdue_follows_each_row_update_and_tombstone() -> None:
    board = StatusBoard()
    key = ("hr", "payroll", "P1", "response")
    past = b.T0 - timedelta(minutes=10)
    row = b.status("hr", "payroll", priority="P1", clocks=[("response", "running", None, past)])
    board.put("h1", row)
    board.put("h1", row)  # the same row again (table re-read): no double count
    assert board.overdue(key, NOW) == (1, past.timestamp())
    board.put(
        "h1",
        b.status("hr", "payroll", priority="P1", clocks=[("response", "stopped", "met", past)]),
    )
    assert board.overdue(key, NOW) == (0, None)
    board.put("h1", row)
    board.put("h1", None)
    assert board.overdue(key, NOW) == (0, None)


def test_snapshot_shows_what_occurred_only_and_skips_unknown_processes() -> None:
    catalog = Catalog.from_map(
        b.process_map([("sales", "warehouse")], targets={Priority.P1: ("15m", None)})
    )
    board = StatusBoard()
    past = b.T0 - timedelta(hours=1)
    board.put(
        "h1",
        b.status(
            "sales", "warehouse", priority="P2", clocks=[("resolution", "running", None, past)]
        ),
    )
    board.put("h2", b.status("sales", "ghost", clocks=[("resolution", "running", None, past)]))
    snap = StateView(board).snapshot(catalog, NOW)
    assert snap.open_items == [(("sales", "warehouse", "P2"), 1)]  # nothing pre-created
    assert snap.overdue_items == [
        (("sales", "warehouse", "P2", "resolution"), 1),  # known processes, outside the map
    ]
    assert snap.oldest_overdue == [(("sales", "warehouse", "P2", "resolution"), past.timestamp())]


def test_snapshot_reflects_the_time_it_is_asked_for() -> None:
    board = StatusBoard()
    view = StateView(board)
    soon = b.T0 + timedelta(minutes=30)
    board.put("h1", b.status("sales", "warehouse", clocks=[("response", "running", None, soon)]))
    key = ("sales", "warehouse", "P3", "response")
    assert key not in dict(view.snapshot(CATALOG, NOW).overdue_items)  # only while overdue
    assert view.snapshot(CATALOG, NOW).oldest_overdue == []
    later = view.snapshot(CATALOG, soon.timestamp() + 1)
    assert dict(later.overdue_items)[key] == 1
    assert later.oldest_overdue == [(key, soon.timestamp())]
