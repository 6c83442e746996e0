"""Alertmanager's configuration from the process map: a routing tree by accountable team, the
teams' service hours as time intervals, and inhibition of slower burn tiers.

- Routing: the receiving team (`to_team`) is accountable for response and resolution; the
  supplier (`from_team`) for a delivery clock (its own promise). Platform alerts
  (`category="platform"`) go to the operators of Baton.
- Pages go out at once, day and night, to the team's owner and escalation contacts; tickets go
  to the owner and wait for the team's service hours (`active_time_intervals` from its business
  calendar, `mute_time_intervals` for its holidays); `escalate="true"` tickets (a handoff a day
  overdue) go to the escalation contacts, in service hours too.
- What Alertmanager can express of a calendar: weekly hours per weekday in a timezone
  (`location`) and explicit dates. Public holidays are therefore listed date by date for the
  configured years (python-holidays, as the sla service computes them), so the file must be
  regenerated each year (`BatonAlertCalendarEnds` says when). A working interval that crosses
  midnight, or a half-day holiday, cannot be written; Baton's calendars have neither.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from metrics.domain.ops.model import OpsModel, Team
from metrics.domain.ops.rules import TIERS
from metrics.domain.ops.settings import OpsSettings
from shared.contracts import CalendarV1, ContactV1

PLATFORM = "baton-platform"
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def receiver_names(team: str) -> dict[str, str]:
    """The three receivers of a team: tickets, pages, escalations."""
    return {
        "ticket": f"team-{team}",
        "page": f"team-{team}-page",
        "escalate": f"team-{team}-escalation",
    }


def hours_interval(calendar: CalendarV1) -> str:
    """Name of a calendar's working hours interval."""
    return f"{calendar.id}-hours"


def closed_interval(calendar: CalendarV1) -> str:
    """Name of a calendar's holidays interval."""
    return f"{calendar.id}-closed"


def _hhmm(value: Any) -> str:
    return "24:00" if value is None else value.strftime("%H:%M")


def working_hours(calendar: CalendarV1) -> list[dict[str, Any]]:
    """Alertmanager time intervals for a calendar's weekly hours (weekdays with the same hours
    share one entry)."""
    weekly = calendar.weekly_intervals()
    by_hours: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for day in range(7):
        spans = tuple((_hhmm(s), _hhmm(e)) for s, e in weekly[day])
        if spans:
            by_hours.setdefault(spans, []).append(day)
    out = []
    for spans, days in by_hours.items():
        out.append(
            {
                "weekdays": _day_ranges(days),
                "times": [{"start_time": s, "end_time": e} for s, e in spans],
                "location": calendar.timezone,
            }
        )
    return out


def _day_ranges(days: list[int]) -> list[str]:
    """Weekday ranges as Alertmanager reads them: it numbers Sunday 0, so a range may not run
    from a weekday through Sunday ("monday:sunday" is refused at load)."""
    am_numbers = sorted((day + 1) % 7 for day in days)  # Monday 0 -> 1, ..., Sunday 6 -> 0
    ranges: list[list[int]] = []
    for number in am_numbers:
        if ranges and ranges[-1][-1] == number - 1:
            ranges[-1].append(number)
        else:
            ranges.append([number])
    names = ("sunday", *_DAY_NAMES[:6])
    return [names[r[0]] if len(r) == 1 else f"{names[r[0]]}:{names[r[-1]]}" for r in ranges]


@functools.cache
def _country_days(country: str, subdivision: str | None, year: int) -> tuple[date, ...]:
    import holidays

    found = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return tuple(sorted(d for d in found if d.year == year))


def days_off(calendar: CalendarV1, years: tuple[int, ...]) -> list[date]:
    """The calendar's explicit holidays, and its country's public holidays in `years`."""
    spec = calendar.holidays
    days = set(spec.dates)
    if spec.country is not None:
        for year in years:
            days.update(_country_days(spec.country, spec.subdivision, year))
    return sorted(days)


def holiday_intervals(calendar: CalendarV1, years: tuple[int, ...]) -> list[dict[str, Any]]:
    """One Alertmanager time interval per day off (a whole day in the calendar's timezone)."""
    return [
        {
            "years": [str(d.year)],
            "months": [_MONTHS[d.month - 1]],
            "days_of_month": [str(d.day)],
            "location": calendar.timezone,
        }
        for d in days_off(calendar, years)
    ]


def _emails(contacts: list[ContactV1]) -> list[str]:
    seen: list[str] = []
    for c in contacts:
        if c.email and c.email not in seen:
            seen.append(c.email)
    return seen


def _receiver(name: str, emails: list[str], settings: OpsSettings) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": name}
    if emails:
        receiver["email_configs"] = [{"to": ", ".join(emails), "send_resolved": True}]
    if settings.webhook_url:
        receiver["webhook_configs"] = [{"url": settings.webhook_url, "send_resolved": True}]
    return receiver


def _team_receivers(team: Team, settings: OpsSettings) -> list[dict[str, Any]]:
    owner = [team.owner] if team.owner else []
    names = receiver_names(team.id)
    return [
        _receiver(names["ticket"], _emails(owner), settings),
        _receiver(names["page"], _emails([*owner, *team.escalation]), settings),
        _receiver(names["escalate"], _emails([*team.escalation] or owner), settings),
    ]


def _business_hours(team: Team, settings: OpsSettings) -> dict[str, Any]:
    calendar = team.calendar
    if calendar.always_open:
        return {}
    out: dict[str, Any] = {"active_time_intervals": [hours_interval(calendar)]}
    if days_off(calendar, settings.holiday_years):
        out["mute_time_intervals"] = [closed_interval(calendar)]
    return out


def _team_route(team: Team, label: str, settings: OpsSettings) -> dict[str, Any]:
    names = receiver_names(team.id)
    hours = _business_hours(team, settings)
    return {
        "matchers": [f'{label}="{team.id}"'],
        "receiver": names["ticket"],
        "routes": [
            # Pages: at once, 24x7, owner and escalation contacts.
            {"matchers": ['severity="page"'], "receiver": names["page"]},
            # A handoff a day overdue: the escalation contacts, in service hours.
            {"matchers": ['escalate="true"'], "receiver": names["escalate"], **hours},
            # Tickets: the owner, in service hours (they wait until the team is at work).
            {"matchers": ['severity="ticket"'], "receiver": names["ticket"], **hours},
        ],
    }


def _inhibitions() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for tier in TIERS[:-1]:
        slower = "|".join(str(t.number) for t in TIERS if t.number > tier.number)
        rules.append(
            {
                "source_matchers": ['alertname="HandoffErrorBudgetBurn"', f'tier="{tier.number}"'],
                "target_matchers": ['alertname="HandoffErrorBudgetBurn"', f'tier=~"{slower}"'],
                "equal": ["from_team", "to_team", "milestone"],
            }
        )
    rules.append(
        {
            # While metrics is down nothing reports: one page says so, not one per pair.
            "source_matchers": ['alertname="BatonServiceDown"', 'job="baton-metrics"'],
            "target_matchers": ['alertname="HandoffPairNotReported"'],
        }
    )
    return rules


def alertmanager_config(model: OpsModel, settings: OpsSettings) -> dict[str, Any]:
    """The whole alertmanager.yml document."""
    accountable = set(model.accountable_teams())
    teams = [t for t in model.teams if t.id in accountable]
    suppliers = sorted({s.from_team for s in model.slos if s.milestone == "delivery"})
    receivers = [_receiver(PLATFORM, [settings.platform_email], settings)]
    for team in teams:
        receivers.extend(_team_receivers(team, settings))
    delivery_routes = [_team_route(t, "from_team", settings) for t in teams if t.id in suppliers]
    routes: list[dict[str, Any]] = [
        {
            "matchers": ['category="platform"'],
            "receiver": PLATFORM,
            "group_by": ["alertname", "job"],
        },
    ]
    if delivery_routes:
        routes.append(
            {
                # A delivery clock is the supplier's promise: its breaches go to the supplier.
                "matchers": ['milestone="delivery"'],
                "receiver": PLATFORM,
                "group_by": ["alertname", "from_team"],
                "routes": delivery_routes,
            }
        )
    routes.extend(_team_route(t, "to_team", settings) for t in teams)
    calendars = {t.calendar.id: t.calendar for t in teams if not t.calendar.always_open}
    intervals: list[dict[str, Any]] = []
    for calendar in sorted(calendars.values(), key=lambda c: c.id):
        intervals.append(
            {"name": hours_interval(calendar), "time_intervals": working_hours(calendar)}
        )
        closed = holiday_intervals(calendar, settings.holiday_years)
        if closed:
            intervals.append({"name": closed_interval(calendar), "time_intervals": closed})
    return {
        "global": {
            "resolve_timeout": "5m",
            "smtp_smarthost": settings.smtp_smarthost,
            "smtp_from": settings.smtp_from,
            "smtp_require_tls": False,
        },
        "route": {
            # Anything no team route matches (an unknown team) reaches Baton's operators.
            "receiver": PLATFORM,
            "group_by": ["alertname", "to_team"],
            "group_wait": settings.group_wait,
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": _inhibitions(),
        "receivers": receivers,
        "time_intervals": intervals,
    }
