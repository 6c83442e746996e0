"""The clock semantics of SPEC section 3, each pinned by the behaviour users see."""

from __future__ import annotations

from datetime import UTC, datetime

from builders import OFFICE
from shared.calendar import from_us, to_us
from shared.contracts import ClockName, Priority
from shared.events import ClockStage, HandoffState, Outcome
from sla.domain.handoff import DecisionKind
from sla_harness import US, Ev, Run, at, net_outcomes, standard

RESPONSE, RESOLUTION, DELIVERY = ClockName.RESPONSE, ClockName.RESOLUTION, ClockName.DELIVERY


def test_response_met_when_accepted_before_deadline() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    decisions = run.send(Ev("accepted", 20, "a"))
    assert [d.kind for d in decisions if d.clock and d.clock.name is RESPONSE] == [
        DecisionKind.MET,
        DecisionKind.STOPPED,
    ]
    clock = run.clock(RESPONSE)
    assert clock.outcome is Outcome.MET
    assert clock.elapsed_business == 20 * 60 * US
    assert clock.elapsed_wall == 20 * 60 * US


def test_clock_starts_when_the_handoff_reaches_the_receiver() -> None:
    run = Run()
    run.send(Ev("submitted", 30, "s"))
    assert run.clock(RESPONSE).start == at(30)
    assert run.clock(RESPONSE).deadline == at(90)


def test_missed_is_decided_the_moment_the_deadline_passes() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    handoff = run.book.handoffs["h-1"]
    run.advance(60)  # exactly at the deadline: not late yet
    assert "missed" not in run.kinds(RESPONSE)
    assert handoff.wake == at(60) + 1
    run.now = at(60) + 1
    steps = run.book.due(run.now)
    kinds = [d.kind for s in steps for d in s.decisions]
    assert DecisionKind.MISSED in kinds
    missed = next(d for s in steps for d in s.decisions if d.kind is DecisionKind.MISSED)
    assert missed.at == at(60) and missed.clock is not None and missed.clock.name is RESPONSE


def test_milestone_exactly_at_the_deadline_is_met() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("accepted", 60, "a"))
    assert run.clock(RESPONSE).outcome is Outcome.MET


def test_late_milestone_after_missed_stops_the_clock_without_a_second_outcome() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(70)
    run.send(Ev("accepted", 70, "a"))
    assert run.kinds(RESPONSE) == ["warning", "warning", "missed", "stopped"]
    stopped = next(d for d in run.decisions if d.kind is DecisionKind.STOPPED)
    assert stopped.clock is not None and stopped.clock.elapsed_wall == 70 * 60 * US


def test_warnings_are_emitted_once_at_each_threshold() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(29)
    assert run.kinds(RESPONSE) == []
    run.advance(30)
    assert run.kinds(RESPONSE) == ["warning"]
    run.advance(45)
    assert run.kinds(RESPONSE) == ["warning", "warning"]
    warnings = [d for d in run.decisions if d.kind is DecisionKind.WARNING]
    assert [(d.threshold, d.at) for d in warnings][:2] == [(50, at(30)), (75, at(45))]
    run.send(Ev("accepted", 50, "a"))
    assert run.kinds(RESPONSE) == ["warning", "warning", "met", "stopped"]


def test_exactly_one_outcome_per_clock_and_cycle_however_often_time_passes() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    for minute in (61, 120, 300, 1000):
        run.advance(minute)
    counts = [k for k in run.kinds() if k in ("met", "missed")]
    assert counts == ["missed", "missed"]  # one response, one resolution


def test_deadlines_run_on_the_receivers_business_calendar() -> None:
    # Friday 2026-03-06 17:00 Brussels (16:00 UTC); 1h response -> Monday 09:00 local.
    run = Run(std=standard(calendar=OFFICE))
    friday = (datetime(2026, 3, 6, 16, 0, tzinfo=UTC) - from_us(at(0))).total_seconds()
    run.send(Ev("submitted", friday / 60, "s"))
    deadline = run.clock(RESPONSE).deadline
    assert from_us(deadline) == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def test_business_and_wall_elapsed_are_both_kept() -> None:
    run = Run(std=standard(calendar=OFFICE))
    # Monday 11:30 local (10:30 UTC) -> accepted 13:30 local: 2h wall, 1h business (lunch).
    start = (datetime(2026, 3, 2, 10, 30, tzinfo=UTC) - from_us(at(0))).total_seconds()
    run.send(Ev("submitted", start / 60, "s"), Ev("accepted", start / 60 + 120, "a"))
    clock = run.clock(RESPONSE)
    assert clock.elapsed_wall == 2 * 3600 * US
    assert clock.elapsed_business == 1 * 3600 * US


def test_pause_before_first_response_excludes_paused_time_from_response() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("paused", 10, "p"), Ev("resumed", 40, "r"))
    assert run.clock(RESPONSE).deadline == at(90)
    assert run.clock(RESOLUTION).deadline == at(270)
    run.send(Ev("accepted", 80, "a"))
    clock = run.clock(RESPONSE)
    assert clock.outcome is Outcome.MET
    assert clock.elapsed_business == 50 * 60 * US
    assert clock.paused_business == 30 * 60 * US


def test_pause_after_first_response_stops_resolution_only() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("accepted", 10, "a"))
    run.send(Ev("paused", 20, "p"), Ev("resumed", 80, "r"))
    assert run.clock(RESPONSE).paused_business == 0
    assert run.clock(RESPONSE).outcome is Outcome.MET
    assert run.clock(RESOLUTION).deadline == at(240 + 60)


def test_open_pause_has_no_deadline_and_never_breaches() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("paused", 10, "p"))
    clock = run.clock(RESOLUTION)
    assert clock.deadline is None and clock.stage is ClockStage.PAUSED
    run.advance(10_000)
    assert "missed" not in run.kinds()
    run.send(Ev("resumed", 10_000, "r"))
    assert run.clock(RESPONSE).deadline == at(10_000 + 50)


def test_rejection_closes_the_cycle_and_resubmission_starts_a_new_one() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s1"))
    run.advance(300)  # response and resolution of cycle 1 missed
    run.send(Ev("rejected", 300, "x"))
    assert run.evaluation().state is HandoffState.RETURNED
    run.send(Ev("submitted", 400, "s2"), Ev("accepted", 410, "a"), Ev("completed", 500, "c"))
    ev = run.evaluation()
    assert [c.number for c in ev.cycles] == [1, 2]
    assert ev.state is HandoffState.COMPLETED
    assert run.clock(RESPONSE, 1).outcome is Outcome.MISSED
    assert run.clock(RESPONSE, 2).outcome is Outcome.MET
    assert run.clock(RESOLUTION, 2).outcome is Outcome.MET
    opened = [d.cycle.number for d in run.decisions if d.kind is DecisionKind.OPENED and d.cycle]
    assert opened == [1, 2]


def test_rejection_is_a_response_and_voids_the_resolution_clock() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("rejected", 20, "x"))
    assert run.clock(RESPONSE).outcome is Outcome.MET
    resolution = run.clock(RESOLUTION)
    assert resolution.outcome is None and resolution.stage is ClockStage.CANCELLED
    run.advance(1000)
    assert "missed" not in run.kinds()


def test_reprioritized_applies_new_targets_from_the_original_start_keeping_pauses() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("paused", 5, "p"), Ev("resumed", 15, "r"))
    assert run.clock(RESPONSE).deadline == at(70)  # P3: 1h + 10m paused
    run.send(Ev("reprioritized", 20, "rp", priority=Priority.P1))
    assert run.clock(RESPONSE).deadline == at(25)  # P1: 15m from the start + 10m paused
    assert run.clock(RESPONSE).priority is Priority.P1
    run.send(Ev("reprioritized", 22, "rp2", priority=Priority.P4))
    assert run.clock(RESPONSE).deadline == at(130)  # later again


def test_reprioritized_to_a_tighter_target_already_passed_is_missed_at_once() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.send(Ev("reprioritized", 40, "rp", priority=Priority.P1))
    assert run.kinds(RESPONSE)[-1] == "missed"
    assert run.clock(RESPONSE).deadline == at(15)


def test_delivery_clock_missed_when_not_submitted_by_due_at() -> None:
    run = Run()
    run.send(Ev("expected", 0, "e", due_minute=180))
    assert run.clock(DELIVERY).deadline == at(180)
    run.advance(181)
    assert run.kinds(DELIVERY)[-1] == "missed"
    run.send(Ev("submitted", 200, "s"))
    assert run.clock(DELIVERY).outcome is Outcome.MISSED
    assert run.kinds(DELIVERY)[-1] == "stopped"


def test_delivery_clock_met_and_response_clock_starts_at_delivery() -> None:
    run = Run()
    run.send(Ev("expected", 0, "e", due_minute=180), Ev("submitted", 100, "s"))
    assert run.clock(DELIVERY).outcome is Outcome.MET
    assert run.clock(RESPONSE).start == at(100)


def test_delivery_target_from_the_standard_when_no_due_at() -> None:
    run = Run(std=standard(delivery="2h"))
    run.send(Ev("expected", 0, "e"))
    assert run.clock(DELIVERY).deadline == at(120)


def test_cancelled_stops_every_clock_with_no_outcome() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("cancelled", 10, "c"))
    ev = run.evaluation()
    assert ev.state is HandoffState.CANCELLED
    assert all(c.outcome is None and c.stage is ClockStage.CANCELLED for c in ev.clocks)
    run.advance(1000)
    assert [k for k in run.kinds() if k in ("met", "missed")] == []


def test_a_breach_before_cancellation_stays_a_breach() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(90)
    run.send(Ev("cancelled", 90, "c"))
    assert run.clock(RESPONSE).outcome is Outcome.MISSED
    assert "retracted" not in run.kinds()


def test_duplicate_event_changes_nothing() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("accepted", 10, "a"))
    before = list(run.decisions)
    assert run.send(Ev("accepted", 10, "a")) == []
    assert run.send(Ev("submitted", 0, "s")) == []
    assert run.decisions == before


def test_milestone_in_time_arriving_after_the_breach_retracts_it() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(90)
    assert run.kinds(RESPONSE)[-1] == "missed"
    run.send(Ev("accepted", 50, "a"), arrive=95)
    assert run.kinds(RESPONSE)[-3:] == ["retracted", "met", "stopped"]
    retracted = next(d for d in run.decisions if d.kind is DecisionKind.RETRACTED)
    assert retracted.retracted is Outcome.MISSED and retracted.revision == 0
    met = next(d for d in run.decisions if d.kind is DecisionKind.MET)
    assert met.revision == 1
    assert net_outcomes(run.decisions)[(1, "response")] is Outcome.MET


def test_late_pause_that_moves_the_deadline_retracts_the_breach() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(65)
    assert run.kinds(RESPONSE)[-1] == "missed"
    run.send(Ev("paused", 30, "p"), Ev("resumed", 50, "r"), arrive=66)
    assert run.clock(RESPONSE).deadline == at(80)
    assert run.kinds(RESPONSE)[-1] == "retracted"
    run.advance(81)
    assert run.kinds(RESPONSE)[-1] == "missed"
    missed = [
        d
        for d in run.decisions
        if d.kind is DecisionKind.MISSED and d.clock and d.clock.name is RESPONSE
    ]
    assert [d.revision for d in missed] == [0, 1]
    assert len({d.id_parts("h-1") for d in run.decisions}) == len(run.decisions)


def test_completed_arriving_before_accepted_gives_the_in_order_outcome() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.send(Ev("completed", 100, "c"), arrive=100)  # response missed at 60, completed late
    run.send(Ev("accepted", 30, "a"), arrive=101)
    assert run.clock(RESPONSE).outcome is Outcome.MET
    assert run.clock(RESPONSE).stop == at(30)
    assert net_outcomes(run.decisions) == {
        (1, "response"): Outcome.MET,
        (1, "resolution"): Outcome.MET,
    }


def test_resumed_arriving_before_paused_pairs_up_once_paused_arrives() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("resumed", 40, "r"), arrive=40)
    assert run.clock(RESPONSE).paused_business == 0
    run.send(Ev("paused", 10, "p"), arrive=41)
    assert run.clock(RESPONSE).paused_business == 30 * 60 * US
    assert run.clock(RESPONSE).deadline == at(90)


def test_handoff_keeps_the_standard_version_it_started_with() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    newer = standard(targets={p: ("5m", "10m") for p in Priority})
    newer = newer.model_copy(update={"version": 2})
    run.std = newer
    run.send(Ev("rejected", 5, "x"), Ev("submitted", 10, "s2"))
    head = run.book.handoffs["h-1"].head
    assert head is not None and head.standard_key.startswith("r1@1~")


def test_events_before_the_opening_event_wait_for_it() -> None:
    run = Run()
    run.send(Ev("accepted", 10, "a"), arrive=10)
    assert run.evaluation() is None
    run.send(Ev("submitted", 0, "s"), arrive=11)
    assert run.clock(RESPONSE).outcome is Outcome.MET


def test_closed_handoffs_are_forgotten_after_the_retention() -> None:
    run = Run()
    run.book = type(run.book)(120 * US, 120 * US)
    run.send(Ev("submitted", 0, "s"), Ev("completed", 10, "c"))
    run.advance(11)
    assert "h-1" in run.book.handoffs
    run.advance(12)
    assert "h-1" not in run.book.handoffs
    assert run.steps[-1].forgotten


def test_deadline_instants_are_exact_microseconds() -> None:
    run = Run()
    run.send(Ev("submitted", 0.000001 / 60, "s"))
    clock = run.clock(RESPONSE)
    assert clock.deadline is not None
    assert clock.deadline - clock.start == 3600 * US
    assert to_us(from_us(clock.deadline)) == clock.deadline


# --------------------------------------------------------------------------- found by an
# independent check of the BPI Challenge 2013 replay


def test_a_response_given_while_paused_is_decided_at_the_milestone() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("paused", 10, "p"))
    decisions = run.send(Ev("accepted", 20, "a"))
    assert [d.kind for d in decisions if d.clock and d.clock.name is RESPONSE] == [
        DecisionKind.MET,
        DecisionKind.STOPPED,
    ]
    clock = run.clock(RESPONSE)
    assert clock.outcome is Outcome.MET and clock.stop == at(20)
    assert clock.deadline == at(60 + 10)  # the 10 paused minutes before the response
    assert clock.paused_business == 10 * 60 * US
    assert run.clock(RESOLUTION).stage is ClockStage.PAUSED  # still waiting on the supplier


def test_a_response_while_paused_after_the_target_was_used_up_is_missed_at_once() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.send(Ev("paused", 70, "p"), Ev("accepted", 80, "a"), arrive=80)
    assert run.clock(RESPONSE).outcome is Outcome.MISSED
    assert run.clock(RESPONSE).deadline == at(60)


def status(run: Run, name: ClockName, read_at: float | None = None):  # type: ignore[no-untyped-def]
    """A clock as the API shows it: the handoff's status row written now, read at `read_at`
    (minutes; default now)."""
    from shared.events import HandoffStatusV1
    from sla.domain.status import status_now
    from sla.handlers import status_row

    step = run.book.step(run.book.handoffs[run.handoff_id], run.now)
    row = HandoffStatusV1.model_validate_json(status_row(step, run.book) or b"")
    now = run.now if read_at is None else at(read_at)
    return next(c for c in status_now(row, now, None).clocks if c.status.clock is name)


def test_warnings_passed_on_a_stopped_clock_are_judged_at_the_stop() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"), Ev("accepted", 5, "a"))  # met at 8 % of its 1h target
    run.advance(500)
    assert status(run, RESPONSE).warnings_passed(run.std.warnings) == []
    run.send(Ev("completed", 200, "c"))  # 200 of 240 minutes: past 50 % and 75 %
    assert status(run, RESOLUTION).warnings_passed(run.std.warnings) == [50, 75]


def test_warnings_passed_on_a_running_clock_are_judged_now() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s"))
    run.advance(35)
    assert status(run, RESPONSE).warnings_passed(run.std.warnings) == [50]
    later = status(run, RESPONSE, read_at=50)  # the row of minute 35, read at minute 50
    assert later.warnings_passed(run.std.warnings) == [50, 75]
    assert later.elapsed_business == 50 * 60 * US and later.outcome is None
    assert status(run, RESPONSE, read_at=61).outcome is Outcome.MISSED


def test_a_priority_downgrade_after_the_breach_keeps_the_breach_on_record() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s", priority=Priority.P1))  # 15m response
    run.advance(20)
    assert run.kinds(RESPONSE)[-1] == "missed"
    run.send(Ev("reprioritized", 25, "rp", priority=Priority.P4))  # 2h from the start
    clock = run.clock(RESPONSE)
    assert clock.outcome is Outcome.MISSED
    assert clock.priority is Priority.P1 and clock.deadline == at(15)
    assert "retracted" not in run.kinds()
    assert run.evaluation().priority is Priority.P4  # the handoff's priority did change
    run.send(Ev("accepted", 30, "a"))
    assert run.kinds(RESPONSE)[-1] == "stopped"
    assert net_outcomes(run.decisions)[(1, "response")] is Outcome.MISSED


def test_a_downgrade_made_before_the_deadline_but_arriving_late_retracts_the_breach() -> None:
    run = Run()
    run.send(Ev("submitted", 0, "s", priority=Priority.P1))
    run.advance(20)
    assert run.kinds(RESPONSE)[-1] == "missed"
    run.send(Ev("reprioritized", 10, "rp", priority=Priority.P4), arrive=21)
    assert run.kinds(RESPONSE)[-1] == "retracted"
    assert run.clock(RESPONSE).outcome is None and run.clock(RESPONSE).deadline == at(120)
