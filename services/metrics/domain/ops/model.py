"""The process map as ops tooling sees it: who is accountable for which clock of which pair,
how urgent its alerts are, when each team works, and whom to tell.

Labels follow the metrics service (one place: `metrics.domain.catalog.Catalog`): a series is
per supplier->customer pair, priority and milestone, so where several routes join the same pair
their alerting policies are merged, the strictest winning (page over ticket, the calendar month
over a rolling 30 days, the highest objective).
"""

from __future__ import annotations

from dataclasses import dataclass

from metrics.domain.catalog import Catalog
from shared.contracts import (
    AlertSeverity,
    BudgetWindow,
    CalendarV1,
    ClockName,
    ContactV1,
    Priority,
    ProcessMapV1,
    ServiceStandardV1,
)

_URGENCY = (AlertSeverity.TICKET, AlertSeverity.PAGE)
_WINDOW_STRICTNESS = (BudgetWindow.ROLLING_30D, BudgetWindow.CALENDAR_MONTH)


@dataclass(frozen=True)
class PairSlo:
    """The objective of one clock of one supplier->customer pair, and how it alerts."""

    from_team: str
    to_team: str
    milestone: str
    objective: float
    severity: AlertSeverity
    window: BudgetWindow
    routes: tuple[str, ...]

    @property
    def accountable(self) -> str:
        """The team that must act: the supplier for a delivery clock, else the receiver."""
        return self.from_team if self.milestone == ClockName.DELIVERY.value else self.to_team


@dataclass(frozen=True)
class Team:
    """A process of the map as a receiver of notifications."""

    id: str
    name: str
    calendar: CalendarV1
    owner: ContactV1 | None
    escalation: tuple[ContactV1, ...]


@dataclass(frozen=True)
class OpsModel:
    """Everything the generators need, sorted so the output is deterministic."""

    slos: tuple[PairSlo, ...]
    teams: tuple[Team, ...]

    @classmethod
    def from_map(cls, process_map: ProcessMapV1) -> OpsModel:
        """Merge the routes of each pair and milestone as the metrics service labels them."""
        catalog = Catalog.from_map(process_map)
        milestones = {(f, t, m) for f, t, _, m in catalog.combos}
        severity: dict[tuple[str, str, str], AlertSeverity] = {}
        window: dict[tuple[str, str, str], BudgetWindow] = {}
        routes: dict[tuple[str, str, str], list[str]] = {}
        for route in process_map.routes:
            for milestone in ClockName:
                key = (route.from_process, route.to_process, milestone.value)
                if key not in milestones or not _sets(route.standard, milestone):
                    continue
                policy = route.alerting
                old_severity = severity.get(key, AlertSeverity.TICKET)
                severity[key] = max(old_severity, policy.severity, key=_URGENCY.index)
                old_window = window.get(key, BudgetWindow.ROLLING_30D)
                window[key] = max(old_window, policy.window, key=_WINDOW_STRICTNESS.index)
                routes.setdefault(key, []).append(route.id)
        slos = tuple(
            PairSlo(
                from_team=f,
                to_team=t,
                milestone=m,
                objective=catalog.objectives[(f, t, m)],
                severity=severity[(f, t, m)],
                window=window[(f, t, m)],
                routes=tuple(routes[(f, t, m)]),
            )
            for f, t, m in sorted(milestones)
        )
        calendars = {c.id: c for c in process_map.calendars}
        teams = tuple(
            Team(p.id, p.name, calendars[p.calendar], p.owner, p.escalation)
            for p in sorted(process_map.processes, key=lambda p: p.id)
            if p.calendar in calendars
        )
        return cls(slos=slos, teams=teams)

    def accountable_teams(self) -> tuple[str, ...]:
        """Teams some SLO alert can be addressed to, sorted."""
        return tuple(sorted({s.accountable for s in self.slos}))


def _sets(standard: ServiceStandardV1, milestone: ClockName) -> bool:
    """True when the standard sets a target for the milestone at some priority."""
    return any(standard.target(p, milestone) is not None for p in Priority)
