"""Prometheus recording and alerting rules, generated from the process map.

The design (README "Alerts" defends it): the arithmetic is generic and label-driven -- one rule
per window covers every pair, and each pair's objective is read from the metrics service's
`handoff_slo_objective_ratio` (SLOs as data, always the map routing enforces) -- while what only
the map knows is generated as data too: one constant series per pair and milestone,
`pair_milestone:handoff_slo:policy{severity, window}`, which the alerts join. A new route
therefore needs no PromQL, the rule count does not grow with the map beyond one constant per
pair and milestone, and pairs the running system reports but these rules do not know still
alert (with the default policy) while `BatonAlertRulesStale` says to regenerate.

Exact counts: `handoff_target_outcomes_total - handoff_target_retractions_total` (a miss later
retracted by a late event counts as met), so every window records *net* increases; a window
that holds a retraction but not the miss before it may be negative, and the ratios clamp.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from metrics.domain.ops.model import OpsModel
from metrics.domain.ops.settings import OpsSettings
from shared.contracts import AlertSeverity, BudgetWindow

PPM = "from_team, to_team, priority, milestone"
PM = "from_team, to_team, milestone"
SHORT_WINDOWS = ("5m", "30m", "1h", "2h", "6h")
LONG_WINDOWS = ("1d", "3d", "30d")
MONTH = "month"
"""The calendar month so far (UTC), summed from hourly increases."""

OUTCOMES = "handoff_target_outcomes_total"
RETRACTIONS = "handoff_target_retractions_total"
OBJECTIVE = "handoff_slo_objective_ratio"
POLICY = "pair_milestone:handoff_slo:policy"
"""Generated: one constant per pair and milestone, labels severity and window."""
EFFECTIVE_POLICY = "pair_milestone:handoff_slo:policy_effective"
"""The generated policy, plus the default policy for pairs the map of these rules lacks."""
MONTH_START = "baton:month_start:timestamp_seconds"

PAIR_DASHBOARD = ("baton-pair", "baton-supplier-customer-pair")


def decided(level: str, window: str) -> str:
    """Name of the net count of decided targets (met + missed - retracted) over a window."""
    return f"{level}:handoff_decided:increase{window}"


def missed(level: str, window: str) -> str:
    """Name of the net count of missed targets over a window."""
    return f"{level}:handoff_missed:increase{window}"


def error_ratio(level: str, window: str) -> str:
    """Name of the share of decided targets that were missed."""
    return f"{level}:handoff_target_error:ratio{window}"


def ontime_ratio(level: str, window: str) -> str:
    """Name of the share of decided targets that were met."""
    return f"{level}:handoff_target_ontime:ratio{window}"


def burn_rate(window: str) -> str:
    """Name of error ratio / error budget (1 - objective), per pair and milestone."""
    return f"pair_milestone:handoff_error_budget:burnrate{window}"


BUDGET_ERROR_RATIO = "pair_milestone:handoff_target_error:ratio_budget_window"
BUDGET_REMAINING = "pair_milestone:handoff_error_budget:remaining_ratio"


@dataclass(frozen=True)
class Tier:
    """One multi-window burn-rate alert of the SRE workbook (for a 30-day budget)."""

    number: int
    factor: float
    long: str
    short: str
    hold: str
    page: bool
    budget_spent: str
    """What the factor means in words: the share of a 30-day budget the long window spends."""


TIERS = (
    Tier(1, 14.4, "1h", "5m", "2m", True, "2% of a 30-day budget in one hour"),
    Tier(2, 6, "6h", "30m", "15m", True, "5% of a 30-day budget in six hours"),
    Tier(3, 3, "1d", "2h", "1h", False, "10% of a 30-day budget in a day"),
    Tier(4, 1, "3d", "6h", "3h", False, "10% of a 30-day budget in three days"),
)


def _labels(name: str) -> str:
    return "{{ $labels." + name + " }}"


PAIR_TEXT = f"{_labels('from_team')} → {_labels('to_team')}"


# --------------------------------------------------------------------------- recording rules


def _net(window: str, outcome: str | None) -> str:
    """Net increase of outcomes (one outcome, or all) minus their retractions, per clock."""
    o = f'{{outcome="{outcome}"}}' if outcome else ""
    r = f'{{retracted="{outcome}"}}' if outcome else ""
    every = f"sum by ({PPM}) (increase({OUTCOMES}[{window}]))"
    # `or 0 * ...`: a combination without a retraction (or miss) series still counts, as 0.
    zero = f"0 * {every}"
    base = (
        f"(sum by ({PPM}) (increase({OUTCOMES}{o}[{window}]))\n  or {zero})" if outcome else every
    )
    retracted = f"(sum by ({PPM}) (increase({RETRACTIONS}{r}[{window}]))\n  or {zero})"
    return f"{base}\n- {retracted}"


def _ratios(level: str, window: str) -> list[dict[str, Any]]:
    return [
        {
            "record": error_ratio(level, window),
            "expr": f"clamp(\n  {missed(level, window)}\n  / ({decided(level, window)} > 0),\n"
            "  0, 1\n)",
        },
        {
            "record": ontime_ratio(level, window),
            "expr": f"1 - {error_ratio(level, window)}",
        },
    ]


def _window_rules(window: str) -> list[dict[str, Any]]:
    """Per pair, priority and milestone, then per pair and milestone: counts and ratios."""
    ppm, pm = "pair_priority_milestone", "pair_milestone"
    if window == MONTH:
        # Hourly increases whose hour began in the month in force at evaluation time (from the
        # raw counters, so this group depends on no other group's evaluation).
        in_month = f"and on() (vector(time() - 3600) >= on() ({MONTH_START} @ end()))"
        counts = [
            {
                "record": name(ppm, MONTH),
                "expr": f"sum_over_time((\n(\n{_net('1h', outcome)}\n)\n{in_month}\n)[31d:1h])",
            }
            for name, outcome in ((decided, None), (missed, "missed"))
        ]
    else:
        counts = [
            {"record": decided(ppm, window), "expr": _net(window, None)},
            {"record": missed(ppm, window), "expr": _net(window, "missed")},
        ]
    rules = [*counts, *_ratios(ppm, window)]
    for name in (decided, missed):
        rules.append(
            {"record": name(pm, window), "expr": f"sum without (priority) ({name(ppm, window)})"}
        )
    rules.extend(_ratios(pm, window))
    rules.append(
        {
            "record": burn_rate(window),
            "expr": f"{error_ratio(pm, window)}\n/ on({PM}) group_left ()\n"
            f"(1 - max by ({PM}) ({OBJECTIVE}))",
        }
    )
    return rules


def _policy_rules(model: OpsModel) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "record": POLICY,
            "expr": "vector(1)",
            "labels": {
                "from_team": slo.from_team,
                "to_team": slo.to_team,
                "milestone": slo.milestone,
                "severity": slo.severity.value,
                "window": slo.window.value,
            },
        }
        for slo in model.slos
    ]
    default = (
        f"label_replace(label_replace(\n  group by ({PM}) ({OBJECTIVE}),\n"
        f'  "severity", "{AlertSeverity.PAGE.value}", "", ""),\n'
        f'  "window", "{BudgetWindow.ROLLING_30D.value}", "", "")'
    )
    rules.append({"record": EFFECTIVE_POLICY, "expr": f"{POLICY}\nor on({PM})\n{default}"})
    return rules


def _budget_rules() -> list[dict[str, Any]]:
    pm = "pair_milestone"
    chosen = " or ".join(
        f'({error_ratio(pm, w)}\n  and on({PM}) {EFFECTIVE_POLICY}{{window="{p.value}"}})'
        for w, p in (("30d", BudgetWindow.ROLLING_30D), (MONTH, BudgetWindow.CALENDAR_MONTH))
    )
    return [
        {"record": BUDGET_ERROR_RATIO, "expr": chosen},
        {
            "record": BUDGET_REMAINING,
            "expr": f"1 - {BUDGET_ERROR_RATIO}\n/ on({PM}) group_left ()\n"
            f"(1 - max by ({PM}) ({OBJECTIVE}))",
        },
    ]


# --------------------------------------------------------------------------- alerts


def _links(settings: OpsSettings, alertname: str, pair: bool = True) -> dict[str, str]:
    links = settings.links
    out = {"runbook_url": links.runbook_for(alertname)}
    if pair:
        uid, slug = PAIR_DASHBOARD
        query = (
            f"var-from_team={_labels('from_team')}&var-to_team={_labels('to_team')}"
            f"&var-milestone={_labels('milestone')}"
        )
        out["dashboard_url"] = links.dashboard(uid, slug, query)
        out["overdue_url"] = links.overdue_list(_labels("from_team"), _labels("to_team"))
    return out


def _alert(
    settings: OpsSettings,
    name: str,
    expr: str,
    hold: str,
    labels: dict[str, str],
    summary: str,
    description: str,
    pair: bool = True,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if settings.profile.hold and hold != "0s":
        rule["for"] = hold
    rule["labels"] = labels
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        **_links(settings, name, pair),
    }
    return rule


def _burn_alerts(settings: OpsSettings) -> list[dict[str, Any]]:
    rules = []
    guard = settings.profile.min_page_events
    for tier in TIERS:
        condition = (
            f"{burn_rate(tier.long)} > {tier.factor:g}\n"
            f"and on({PM}) {burn_rate(tier.short)} > {tier.factor:g}"
        )
        labels = {
            "category": "slo",
            "tier": str(tier.number),
            "long_window": tier.long,
            "short_window": tier.short,
        }
        if tier.page:
            # Low-traffic guard: a handful of handoffs cannot make a page.
            condition += f"\nand on({PM}) {decided('pair_milestone', tier.long)} >= {guard}"
            # The route's severity (page, or ticket for routes that never wake anyone).
            expr = f"(\n{condition}\n)\n* on({PM}) group_left (severity) {EFFECTIVE_POLICY}"
        else:
            expr = condition
            labels["severity"] = AlertSeverity.TICKET.value
        summary = (
            f"{PAIR_TEXT}: {_labels('milestone')} targets missed at "
            '{{ $value | printf "%.1f" }}x the rate the objective allows'
        )
        description = (
            f"Over the last {tier.long} (and still over the last {tier.short}) the "
            f"{_labels('milestone')} targets of handoffs from {_labels('from_team')} to "
            f"{_labels('to_team')} were missed {tier.factor:g}x or more as often as the "
            f"objective allows: {tier.budget_spent}. At this pace the error budget is gone "
            f"in about {_exhaustion(tier.factor)}. Open the overdue list to see which handoffs "
            "are late, and who holds them."
        )
        rules.append(
            _alert(
                settings,
                "HandoffErrorBudgetBurn",
                expr,
                tier.hold,
                labels,
                summary,
                description,
            )
        )
    return rules


def _exhaustion(factor: float) -> str:
    hours = 30 * 24 / factor
    return f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.0f} hours"


def _state_alerts(settings: OpsSettings) -> list[dict[str, Any]]:
    escalate_after = settings.profile.overdue_escalation_seconds
    return [
        _alert(
            settings,
            "HandoffsOverdue",
            f"sum by ({PM}) (handoff_overdue_items) > 0",
            "5m",
            {"category": "state", "severity": AlertSeverity.TICKET.value},
            f"{PAIR_TEXT}: {{{{ $value }}}} handoff(s) past their {_labels('milestone')} deadline",
            f"{{{{ $value }}}} handoff(s) from {_labels('from_team')} to {_labels('to_team')} "
            f"are past their {_labels('milestone')} deadline and still open. The overdue list "
            "names them, with who holds each and since when.",
        ),
        _alert(
            settings,
            "HandoffOverdueTooLong",
            f"time() - min by ({PM}) (handoff_oldest_overdue_deadline_timestamp_seconds)\n"
            f"> {escalate_after}",
            "0s",
            {
                "category": "state",
                "severity": AlertSeverity.TICKET.value,
                "escalate": "true",
            },
            f"{PAIR_TEXT}: a handoff is {{{{ $value | humanizeDuration }}}} past its "
            f"{_labels('milestone')} deadline",
            f"The longest-overdue handoff from {_labels('from_team')} to {_labels('to_team')} "
            f"passed its {_labels('milestone')} deadline {{{{ $value | humanizeDuration }}}} "
            "ago: escalated to the team's escalation contacts.",
        ),
    ]


def _platform(
    settings: OpsSettings,
    name: str,
    expr: str,
    hold: str,
    severity: AlertSeverity,
    summary: str,
    description: str,
    **labels: str,
) -> dict[str, Any]:
    return _alert(
        settings,
        name,
        expr,
        hold,
        {"category": "platform", "severity": severity.value, **labels},
        summary,
        description,
        pair=False,
    )


def _platform_alerts(settings: OpsSettings) -> list[dict[str, Any]]:
    jobs = settings.jobs
    profile = settings.profile
    page, ticket = AlertSeverity.PAGE, AlertSeverity.TICKET
    job_regex = "|".join(jobs.all())
    rules = [
        _platform(
            settings,
            "BatonServiceDown",
            f'up{{job=~"{job_regex}"}} == 0',
            "2m",
            page,
            "{{ $labels.job }} on {{ $labels.instance }} does not answer scrapes",
            "Prometheus cannot scrape {{ $labels.job }} ({{ $labels.instance }}). While "
            "baton-metrics is down no SLO alert can fire.",
        ),
    ]
    for job in jobs.all():
        rules.append(
            _platform(
                settings,
                "BatonServiceMissing",
                f'absent(up{{job="{job}"}})',
                "10m",
                page,
                f"Prometheus has no target for {job}",
                f"No scrape target of job {job} exists: service discovery or prometheus.yml "
                "lost it, and its alerts cannot fire.",
                job=job,
            )
        )
    pair_rule = _platform(
        settings,
        "HandoffPairNotReported",
        f"group by ({PM}) ({POLICY})\nunless on({PM}) {OBJECTIVE}",
        "15m",
        ticket,
        f"{PAIR_TEXT}: no {_labels('milestone')} metrics reported",
        f"The process map these rules were generated from has a {_labels('milestone')} "
        f"target from {_labels('from_team')} to {_labels('to_team')}, but baton-metrics does "
        "not report it: the pair's alerts cannot fire. Is the map in force the same as "
        "deploy/process-map.yaml?",
    )
    pair_rule["annotations"].update(_links(settings, "HandoffPairNotReported"))
    rules += [
        pair_rule,
        _platform(
            settings,
            "BatonAlertRulesStale",
            f"group by ({PM}) ({OBJECTIVE})\nunless on({PM}) {POLICY}",
            "1h",
            ticket,
            f"{PAIR_TEXT} ({_labels('milestone')}) is not in the generated rules",
            "baton-metrics reports a pair and milestone the generated rules do not know: the "
            "map in force is newer than deploy/prometheus/rules. Its alerts use the default "
            "policy (page, 30 days) until the rules are regenerated (`make ops`) and reloaded.",
        ),
        _platform(
            settings,
            "BatonConsumerLagHigh",
            f"max by (group, topic) (handoff_consumer_lag_records) > {profile.max_lag_records}",
            "10m",
            ticket,
            "{{ $labels.group }} is {{ $value }} records behind on {{ $labels.topic }}",
            "The consumer group {{ $labels.group }} has been more than "
            f"{profile.max_lag_records} records behind on {{{{ $labels.topic }}}} for ten "
            "minutes: decisions and metrics are late. Check the service's log and CPU.",
        ),
        _platform(
            settings,
            "BatonDeadLetters",
            "sum by (service, reason, source) (\n"
            "  increase(handoff_dead_letters_total[15m])\n) > 0",
            "0s",
            ticket,
            '{{ $labels.service }} dead-lettered {{ $value | printf "%.0f" }} event(s) of '
            "{{ $labels.source }}: {{ $labels.reason }}",
            "Events posted by the upstream system {{ $labels.source }} were refused downstream "
            "by {{ $labels.service }} ({{ $labels.reason }}) and sent to a dead-letter topic: "
            "their handoffs are not timed. intake's GET /v1/rejections lists them with the "
            "reason in words; fix the system or the map, then replay them.",
        ),
        _platform(
            settings,
            "BatonRoutingRejections",
            "sum by (reason) (increase(handoff_routing_rejected_total[15m])) > 0",
            "0s",
            ticket,
            'routing rejected {{ $value | printf "%.0f" }} handoff(s): {{ $labels.reason }}',
            "Opening events the process map cannot route ({{ $labels.reason }}) were "
            "dead-lettered to handoff.events.v1.dlq: an upstream system names a process, kind "
            "or priority the map does not have.",
        ),
        _platform(
            settings,
            "BatonIntakeRefusals",
            "sum by (reason) (increase(handoff_intake_refused_requests_total[15m])) >= 5",
            "0s",
            ticket,
            'intake refused {{ $value | printf "%.0f" }} request(s) in 15 minutes: '
            "{{ $labels.reason }}",
            "Requests refused at intake's door ({{ $labels.reason }}): nothing of them reached "
            "Baton. The problem+json answers name each field and reason; kafka-unavailable and "
            "map-not-loaded are Baton's own trouble, the others an upstream system's.",
        ),
        _platform(
            settings,
            "BatonChangelogUnreadable",
            "handoff_sla_changelog_unreadable_total > 0",
            "0s",
            page,
            "sla skipped {{ $value }} unreadable changelog record(s)",
            "sla could not decode records of its changelog (sla.state.v1) when it rebuilt its "
            "state, or when it first used a handoff it had rebuilt: those handoffs are lost to "
            "the SLA clocks. Keep the records (do not "
            "compact them away), find the schema change or corruption that made them "
            "unreadable, and re-submit the handoffs.",
        ),
        _platform(
            settings,
            "BatonBreachDetectionSlow",
            "histogram_quantile(0.99, sum by (le) (\n"
            f'  rate(handoff_breach_detection_delay_seconds_bucket{{job="{jobs.sla}"}}[10m])\n'
            f")) > {profile.max_breach_delay_seconds:g}",
            "10m",
            ticket,
            "missed decisions come {{ $value | humanizeDuration }} after their deadlines (p99)",
            "The 99th percentile of the time from a deadline to its missed decision being "
            f"committed has been above {profile.max_breach_delay_seconds:g}s for ten minutes: "
            "sla is overloaded or Kafka transactions are slow.",
        ),
    ]
    if settings.holiday_years:
        last = max(settings.holiday_years)
        ends = int(datetime(last, 12, 1, tzinfo=UTC).timestamp())
        rules.append(
            _platform(
                settings,
                "BatonAlertCalendarEnds",
                f"vector(time()) > {ends}",
                "0s",
                ticket,
                f"Alertmanager's holiday calendars end on {last}-12-31",
                f"deploy/alertmanager/alertmanager.yml lists public holidays up to {last}: "
                "regenerate it (`make ops`) so tickets keep waiting over next year's holidays.",
            )
        )
    return rules


# --------------------------------------------------------------------------- the files


def _group(name: str, interval: str, rules: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "interval": interval, "rules": list(rules)}


def rule_files(model: OpsModel, settings: OpsSettings) -> dict[str, dict[str, Any]]:
    """File name -> rule file document (deploy/prometheus/rules/)."""
    profile = settings.profile
    short = [r for w in SHORT_WINDOWS for r in _window_rules(w)]
    month_start = {
        "record": MONTH_START,
        "expr": "vector(time() - time() % 86400) - (day_of_month() - 1) * 86400",
    }
    long = [r for w in (*LONG_WINDOWS, MONTH) for r in _window_rules(w)]
    return {
        "baton-slo.yml": {
            "groups": [
                _group("baton-slo-short-windows", profile.interval, short),
                # Self-contained: the budget-window rules join the policy and the month start
                # recorded above them, never another group's (possibly older) evaluation.
                _group(
                    "baton-slo-policy-and-long-windows",
                    profile.long_interval,
                    [*_policy_rules(model), month_start, *long, *_budget_rules()],
                ),
                _group("baton-slo-alerts", profile.interval, _burn_alerts(settings)),
            ]
        },
        "baton-operations.yml": {
            "groups": [
                _group("baton-state-alerts", profile.interval, _state_alerts(settings)),
                _group("baton-platform-alerts", profile.interval, _platform_alerts(settings)),
            ]
        },
    }
