"""Every arrival order of the same events gives the same final outcomes (SPEC 3.7).

Events arrive late (an arrival delay per event), out of order (delays reorder them), and
twice (a duplicate arrives later again). Time passes between arrivals and timers fire, so
breaches are emitted and, when a late event proves them wrong, retracted. At the end the net
outcomes -- outcomes minus retractions, what counters and reports show -- must equal those of
in-order arrival, with at most one net outcome per clock and cycle.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import OFFICE
from shared.contracts import Priority
from sla_harness import Ev, Run, net_outcomes, standard

END = 5000.0  # minutes: long after every deadline of every scenario

SCENARIOS: dict[str, list[Ev]] = {
    "in time": [Ev("submitted", 0, "s"), Ev("accepted", 20, "a"), Ev("completed", 100, "c")],
    "late": [Ev("submitted", 0, "s"), Ev("accepted", 70, "a"), Ev("completed", 400, "c")],
    "pause before response": [
        Ev("submitted", 0, "s"),
        Ev("paused", 10, "p"),
        Ev("resumed", 50, "r"),
        Ev("accepted", 80, "a"),
        Ev("completed", 270, "c"),
    ],
    "pause after response": [
        Ev("submitted", 0, "s"),
        Ev("accepted", 5, "a"),
        Ev("paused", 100, "p"),
        Ev("resumed", 200, "r"),
        Ev("completed", 320, "c"),
    ],
    "rework": [
        Ev("submitted", 0, "s1"),
        Ev("accepted", 90, "a1"),
        Ev("rejected", 120, "x"),
        Ev("submitted", 300, "s2"),
        Ev("accepted", 310, "a2"),
        Ev("completed", 500, "c"),
    ],
    "reprioritized": [
        Ev("submitted", 0, "s"),
        Ev("paused", 2, "p"),
        Ev("resumed", 6, "r"),
        Ev("reprioritized", 8, "rp", priority=Priority.P1),
        Ev("accepted", 17, "a"),
        Ev("completed", 80, "c"),
    ],
    "delivery": [
        Ev("expected", 0, "e", due_minute=120),
        Ev("submitted", 150, "s"),
        Ev("accepted", 160, "a"),
        Ev("completed", 200, "c"),
    ],
    "downgrade after breach": [
        Ev("submitted", 0, "s", priority=Priority.P1),
        Ev("reprioritized", 25, "rp", priority=Priority.P4),
        Ev("accepted", 30, "a"),
        Ev("completed", 100, "c"),
    ],
    "accepted while paused": [
        Ev("submitted", 0, "s"),
        Ev("paused", 10, "p"),
        Ev("accepted", 20, "a"),
        Ev("resumed", 90, "r"),
        Ev("completed", 200, "c"),
    ],
    "cancelled": [Ev("submitted", 0, "s"), Ev("paused", 30, "p"), Ev("cancelled", 300, "k")],
    "cancelled after breach": [Ev("submitted", 0, "s"), Ev("cancelled", 90, "k")],
}


def play(events: list[Ev], delays: list[float], duplicates: list[bool], office: bool) -> Run:
    """Deliver each event at occurred + delay (duplicates once more, later), then run to END."""
    run = Run(std=standard(calendar=OFFICE) if office else standard())
    arrivals = [(e.minute + d, i, e) for i, (e, d) in enumerate(zip(events, delays, strict=True))]
    arrivals += [
        (e.minute + d + 7, 100 + i, e)
        for i, (e, d, dup) in enumerate(zip(events, delays, duplicates, strict=True))
        if dup
    ]
    for arrive, _, event in sorted(arrivals, key=lambda a: (a[0], a[1])):
        run.send(event, arrive=arrive)
    run.advance(END if not office else END * 3)
    run.settle()
    return run


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("office", [False, True], ids=["24x7", "office-hours"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_arrival_order_gives_the_in_order_outcomes(name: str, office: bool, data) -> None:
    events = SCENARIOS[name]
    n = len(events)
    expected = net_outcomes(play(events, [0.0] * n, [False] * n, office).decisions)
    delays = data.draw(st.lists(st.floats(0, 600), min_size=n, max_size=n), label="delays")
    dups = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="duplicates")
    run = play(events, delays, dups, office)
    assert net_outcomes(run.decisions) == expected
    # Exactly one outcome per clock and cycle, net of retractions.
    per_clock: dict[tuple[int, str], int] = {}
    for d in run.decisions:
        if d.clock is None or d.kind.value not in ("met", "missed", "retracted"):
            continue
        key = (d.clock.cycle, d.clock.name.value)
        per_clock[key] = per_clock.get(key, 0) + (-1 if d.kind.value == "retracted" else 1)
    assert all(v in (0, 1) for v in per_clock.values())
    # The final state of the clocks is the in-order one too.
    final = run.evaluation()
    assert {(c.cycle, c.name.value): c.outcome for c in final.clocks if c.outcome} == expected


@pytest.mark.parametrize("name", ["in time", "late", "pause before response", "rework"])
def test_all_permutations_of_arrival_give_the_same_outcomes(name: str) -> None:
    """Exhaustive: every order of arrival, all arriving after the last event happened."""
    events = SCENARIOS[name]
    last = max(e.minute for e in events)
    baseline = None
    for order in itertools.permutations(range(len(events))):
        run = Run()
        for k, i in enumerate(order):
            run.send(events[i], arrive=last + 1 + k)
        run.advance(END)
        run.settle()
        outcome = net_outcomes(run.decisions)
        baseline = baseline or outcome
        assert outcome == baseline, order
    in_order = Run()
    for event in events:
        in_order.send(event)
    in_order.advance(END)
    assert net_outcomes(in_order.decisions) == baseline


@pytest.mark.parametrize("name", SCENARIOS)
def test_history_read_in_event_time_order_is_decided_once_as_it_happened(name: str) -> None:
    """A backfill, or a log replayed, long after it happened: each clock is decided once, with
    the decisions of live arrival -- no breach decided at arrival and retracted when its
    milestone follows. (Warnings a jump of the stream time passes together with the deadline
    are not emitted: a clock already missed is warned of by its breach.)"""
    events = SCENARIOS[name]
    live = Run()
    for event in events:
        live.send(event)
    live.advance(END)
    history = Run()
    for k, event in enumerate(sorted(events, key=lambda e: e.minute)):
        history.send(event, arrive=10 * END + k)
    history.settle()
    assert "retracted" not in history.kinds()

    def decided(run: Run, warnings: bool) -> list[tuple[str, ...]]:
        return sorted(
            d.id_parts("h") for d in run.decisions if (d.kind.value == "warning") == warnings
        )

    assert decided(history, False) == decided(live, False)
    assert set(decided(history, True)) <= set(decided(live, True))
