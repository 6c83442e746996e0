"""Handoffs derived from an event log, as an integrator would derive them. Pure: no I/O.

A log is a list of `LogEvent`s (case, time, team, activity, optional priority). Within each
case, in time order (ties keep log order), every change of team is one handoff from the team
that held the case to the one that takes it:

- `submitted` at the sender's last event before the change (the moment it let go),
- `accepted` at the receiver's first event (its first response),
- `completed` at the receiver's last event before it hands on, or at the case's last event
  when it never does.

Events with no team are left out: they do not move the case. The first team of a case
received it from nobody, so it has no handoff. Each handoff's ids are deterministic (the
case and the handoff's rank within it), and so are its events' ids, so deriving the same log
twice gives the same events: posting them again duplicates nothing.

`posted_events` orders every event of the whole log by time, so each Kafka partition reads
its history in event-time order and sla decides each clock once, in stream time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from shared.contracts import as_slug

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@#+=-]*$")
_MAX_ID = 200
_RANK = {"submitted": 0, "accepted": 1, "completed": 2}

PRIORITY_WORDS = {
    "p1": "P1",
    "p2": "P2",
    "p3": "P3",
    "p4": "P4",
    "1": "P1",
    "2": "P2",
    "3": "P3",
    "4": "P4",
    "critical": "P1",
    "major": "P1",
    "urgent": "P1",
    "high": "P2",
    "medium": "P3",
    "normal": "P3",
    "low": "P4",
    "minor": "P4",
}
"""How a log's priority or impact values read as Baton's priorities (case-insensitive);
any other value, or none, is the default priority."""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One row of an event log, its columns already chosen by the mapping."""

    case: str
    at: datetime
    team: str
    activity: str = ""
    priority: str = ""


@dataclass(frozen=True, slots=True)
class Handoff:
    """One team change within a case."""

    handoff_id: str
    case_id: str
    sender: str
    receiver: str
    submitted_at: datetime
    accepted_at: datetime
    completed_at: datetime
    priority: str


def priority_of(value: str, default: str = "P3") -> str:
    """Baton's priority for a log's value (see PRIORITY_WORDS)."""
    return PRIORITY_WORDS.get(value.strip().lower(), default)


def identifier(text: str) -> str:
    """`text` as a Baton identifier: itself when it is one, otherwise its slug with a short
    digest of the original (so two different cases never share an id)."""
    if len(text) <= _MAX_ID - 10 and _IDENTIFIER.match(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    slug = as_slug(text)[: _MAX_ID - 40]
    return f"{slug}-{digest}" if slug else f"case-{digest}"


def cases(events: Iterable[LogEvent]) -> dict[str, list[LogEvent]]:
    """The events of each case that name a team, in time order (ties in log order), cases in
    order of first appearance."""
    out: dict[str, list[LogEvent]] = {}
    for event in events:
        if event.team.strip():
            out.setdefault(event.case, []).append(event)
    for trace in out.values():
        trace.sort(key=lambda e: e.at)  # stable: ties keep log order
    return out


def case_handoffs(
    case: str, trace: Sequence[LogEvent], default_priority: str = "P3"
) -> list[Handoff]:
    """The handoffs of one case, from its team-bearing events in time order."""
    # Stints: runs of consecutive events of the same team, as (first index, last index).
    stints: list[tuple[int, int]] = []
    for index, event in enumerate(trace):
        if stints and trace[stints[-1][0]].team == event.team:
            stints[-1] = (stints[-1][0], index)
        else:
            stints.append((index, index))
    case_id = identifier(case)
    out: list[Handoff] = []
    for rank, (before, stint) in enumerate(pairwise(stints), start=1):
        last_of_sender = trace[before[1]]
        first, last = trace[stint[0]], trace[stint[1]]
        out.append(
            Handoff(
                handoff_id=f"{case_id}#{rank}",
                case_id=case_id,
                sender=last_of_sender.team,
                receiver=first.team,
                submitted_at=last_of_sender.at,
                accepted_at=first.at,
                completed_at=last.at,
                priority=priority_of(last_of_sender.priority or first.priority, default_priority),
            )
        )
    return out


def derive(events: Iterable[LogEvent], default_priority: str = "P3") -> list[Handoff]:
    """Every handoff of the log, case by case."""
    return [
        handoff
        for case, trace in cases(events).items()
        for handoff in case_handoffs(case, trace, default_priority)
    ]


def process_id(team: str) -> str:
    """The process a team is, as `python -m routing generate-bpi` names it ("V5 3rd" ->
    "v5-3rd")."""
    return as_slug(team)


def _stamp(at: datetime) -> str:
    return at.isoformat()


def handoff_events(handoff: Handoff, kind: str) -> list[dict[str, Any]]:
    """The three lifecycle events of a handoff, as intake's POST /v1/events takes them."""
    ids = {"handoff_id": handoff.handoff_id, "case_id": handoff.case_id}
    return [
        {
            **ids,
            "event_id": f"{handoff.handoff_id}:submitted",
            "type": "submitted",
            "occurred_at": _stamp(handoff.submitted_at),
            "data": {
                "case_id": handoff.case_id,
                "kind": kind,
                "from": process_id(handoff.sender),
                "to": process_id(handoff.receiver),
                "priority": handoff.priority,
            },
        },
        {
            **ids,
            "event_id": f"{handoff.handoff_id}:accepted",
            "type": "accepted",
            "occurred_at": _stamp(handoff.accepted_at),
        },
        {
            **ids,
            "event_id": f"{handoff.handoff_id}:completed",
            "type": "completed",
            "occurred_at": _stamp(handoff.completed_at),
        },
    ]


def posted_events(handoffs: Sequence[Handoff], kind: str) -> list[dict[str, Any]]:
    """Every handoff's events, the whole log in event-time order (ties: the earlier handoff,
    then submitted before accepted before completed), so each partition's stream time only
    moves forward."""
    keyed = [
        ((event_at, index, _RANK[event["type"]]), event)
        for index, handoff in enumerate(handoffs)
        for event_at, event in zip(
            (handoff.submitted_at, handoff.accepted_at, handoff.completed_at),
            handoff_events(handoff, kind),
            strict=True,
        )
    ]
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]
