"""deploy/alertmanager/alertmanager.yml, generated from the map: amtool accepts it, alerts reach
the accountable team (the supplier for delivery), pages 24x7 and tickets in service hours."""

from __future__ import annotations

import pytest
import yaml

from metrics import ops
from metrics.domain.ops.alertmanager import holiday_intervals, working_hours
from promtools import REPO, run

CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
DOC = yaml.safe_load(CONFIG.read_text())
MAP = ops.load_map(ops.DEFAULT_MAP)
CALENDARS = {c.id: c for c in MAP.calendars}


def test_amtool_accepts_the_generated_config() -> None:
    result = run("amtool", "check-config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


ROUTES = [
    # (labels of an alert, the receiver it must reach)
    ("category=slo severity=page from_team=service-desk to_team=it-l2-network milestone=response",
     "team-it-l2-network-page"),
    ("category=slo severity=ticket from_team=warehouse to_team=shipping milestone=resolution",
     "team-shipping"),
    ("category=slo severity=ticket from_team=shipping to_team=billing milestone=response",
     "team-billing"),
    # a delivery breach is the supplier's: HR owes payroll its input
    ("category=slo severity=page from_team=hr to_team=payroll milestone=delivery", "team-hr-page"),
    ("category=state severity=ticket from_team=dept-managers to_team=payroll milestone=delivery",
     "team-dept-managers"),
    ("category=state severity=ticket escalate=true from_team=sales to_team=warehouse "
     "milestone=response", "team-warehouse-escalation"),
    ("category=platform severity=page job=baton-sla alertname=BatonChangelogUnreadable",
     "baton-platform"),
    ("category=platform severity=ticket from_team=hr to_team=payroll milestone=response "
     "alertname=HandoffPairNotReported", "baton-platform"),
    ("category=slo severity=page from_team=x to_team=not-in-the-map milestone=response",
     "baton-platform"),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "receiver"), ROUTES, ids=[r for _, r in ROUTES])
def test_amtool_routes_an_alert_to_the_accountable_team(labels: str, receiver: str) -> None:
    result = run(
        "amtool", "config", "routes", "test", f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}", *labels.split(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _route(team: str, label: str = "to_team") -> dict:
    routes = DOC["route"]["routes"]
    if label == "from_team":
        routes = next(r for r in routes if r["matchers"] == ['milestone="delivery"'])["routes"]
    return next(r for r in routes if r["matchers"] == [f'{label}="{team}"'])


def test_pages_go_out_24x7_and_tickets_wait_for_the_teams_service_hours() -> None:
    page, escalate, ticket = _route("payroll")["routes"]
    assert page["matchers"] == ['severity="page"']
    assert "active_time_intervals" not in page and "mute_time_intervals" not in page
    for route in (escalate, ticket):
        assert route["active_time_intervals"] == ["fr-payroll-hours"]
        assert route["mute_time_intervals"] == ["fr-payroll-closed"]


def test_receivers_are_the_teams_owner_and_escalation_contacts_from_the_map() -> None:
    receivers = {r["name"]: r for r in DOC["receivers"]}

    def to(name: str) -> str:
        return receivers[name]["email_configs"][0]["to"]

    assert to("team-payroll") == "claire.martin@example.com"
    assert to("team-payroll-page") == (
        "claire.martin@example.com, payroll-manager@example.com, cfo-office@example.com"
    )
    assert to("team-payroll-escalation") == "payroll-manager@example.com, cfo-office@example.com"
    assert to("team-shipping-escalation") == "transport@example.com"  # no escalation: the owner


def test_service_hours_are_the_calendars_hours_in_its_timezone() -> None:
    assert working_hours(CALENDARS["be-warehouse"]) == [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "06:00", "end_time": "22:00"}],
         "location": "Europe/Brussels"},
        {"weekdays": ["saturday"], "times": [{"start_time": "07:00", "end_time": "13:00"}],
         "location": "Europe/Brussels"},
    ]  # fmt: skip
    every_day = CALENDARS["be-office"].model_copy(update={"hours": {"mon-sun": ("08:00-18:00",)}})
    # Alertmanager numbers Sunday 0: "monday:sunday" would be refused at load.
    assert working_hours(every_day)[0]["weekdays"] == ["sunday:saturday"]
    intervals = {i["name"]: i["time_intervals"] for i in DOC["time_intervals"]}
    assert intervals["be-office-hours"] == working_hours(CALENDARS["be-office"])
    assert "24x7-hours" not in intervals  # an always-open calendar needs none


def test_holidays_are_the_explicit_dates_and_the_countrys_public_holidays() -> None:
    closed = holiday_intervals(CALENDARS["be-office"], (2026,))
    days = {(i["years"][0], i["months"][0], i["days_of_month"][0]) for i in closed}
    assert ("2026", "december", "24") in days  # company closing day
    assert ("2026", "july", "21") in days  # Belgian national day
    assert ("2026", "april", "6") in days  # Easter Monday, a movable feast
    assert ("2027", "july", "21") not in days  # only the years asked for
    assert {i["location"] for i in closed} == {"Europe/Brussels"}


def test_a_faster_burn_tier_inhibits_the_slower_ones_of_the_same_pair_and_clock() -> None:
    burn = [
        r
        for r in DOC["inhibit_rules"]
        if 'alertname="HandoffErrorBudgetBurn"' in r["source_matchers"]
    ]
    pairs = {(r["source_matchers"][1], r["target_matchers"][1]) for r in burn}
    assert pairs == {('tier="1"', 'tier=~"2|3|4"'), ('tier="2"', 'tier=~"3|4"'),
                     ('tier="3"', 'tier=~"4"')}  # fmt: skip
    assert all(r["equal"] == ["from_team", "to_team", "milestone"] for r in burn)
