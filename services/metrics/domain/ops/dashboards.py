"""Grafana dashboards as code: overview, one supplier->customer pair, who waits for whom,
quality, system health; plus the provisioning files for the datasource and the dashboards.

A small generator rather than grafana-foundation-sdk: the dashboards are plain JSON models
(schemaVersion 39, Grafana 10.4+/11), every uid fixed, every panel on the `${datasource}`
variable, every query over the real metric names or the generated recording rules -- and
tests/ops checks each query with promtool against series rendered by the services' own code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metrics.domain.ops.rules import (
    BUDGET_ERROR_RATIO,
    BUDGET_REMAINING,
    PAIR_DASHBOARD,
    burn_rate,
    decided,
    error_ratio,
    missed,
    ontime_ratio,
)
from metrics.domain.ops.settings import OpsSettings

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UID = "baton-prometheus"
PM = "from_team, to_team, milestone"
SEL = 'from_team=~"$from_team", to_team=~"$to_team"'
SEL_M = f'{SEL}, milestone=~"$milestone"'
SEL_PM = f'{SEL_M}, priority=~"$priority"'
PAIR_LEGEND = "{{from_team}} → {{to_team}}"
CLOCK_LEGEND = "{{from_team}} → {{to_team}} {{milestone}}"


@dataclass
class Layout:
    """Places panels left to right, wrapping at Grafana's 24 columns."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1
    panels: list[dict[str, Any]] = field(default_factory=list)

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        self.panels.append(panel)


def target(
    expr: str,
    legend: str = "",
    ref: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
    heatmap: bool = False,
    exemplar: bool = False,
) -> dict[str, Any]:
    """One Prometheus query of a panel."""
    t: dict[str, Any] = {"refId": ref, "datasource": DATASOURCE, "expr": expr, "range": not instant}
    t["instant"] = instant
    if legend:
        t["legendFormat"] = legend
    if table:
        t["format"] = "table"
    elif heatmap:
        t["format"] = "heatmap"
    if exemplar:
        t["exemplar"] = True
    return t


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    unit: str,
    *,
    links: list[dict[str, Any]] | None = None,
    thresholds: list[tuple[str, float | None]] | None = None,
    options: dict[str, Any] | None = None,
    transformations: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> dict[str, Any]:
    """A panel with its unit, description and (optionally) data links and thresholds."""
    defaults: dict[str, Any] = {"unit": unit}
    if links:
        defaults["links"] = links
    if thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for c, v in thresholds],
        }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    out: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": targets,
    }
    if transformations:
        out["transformations"] = transformations
    return out


def overdue_link() -> dict[str, Any]:
    """Data link from a series of a pair to sla's list of its overdue handoffs."""
    return {
        "title": "Overdue handoffs of ${__field.labels.from_team} → ${__field.labels.to_team}",
        "url": "${sla_url}/v1/handoffs?view=overdue&from=${__field.labels.from_team}"
        "&to=${__field.labels.to_team}",
        "targetBlank": True,
    }


def pair_link() -> dict[str, Any]:
    """Data link from a series of a pair to the pair's dashboard."""
    uid, slug = PAIR_DASHBOARD
    return {
        "title": "Open the pair's dashboard",
        "url": f"/d/{uid}/{slug}?var-from_team=${{__field.labels.from_team}}"
        "&var-to_team=${__field.labels.to_team}&${datasource:queryparam}",
    }


def _variable_datasource() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus (Baton)", "value": DATASOURCE_UID},
        "hide": 0,
    }


def _variable(
    name: str, label: str, metric: str, *, multi: bool = True, include_all: bool = True
) -> dict[str, Any]:
    query = f"label_values({metric}, {name})"
    var: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "hide": 0,
    }
    if include_all:
        var["allValue"] = ".*"
        var["current"] = {"text": "All", "value": "$__all"}
    return var


def _constant(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "type": "constant", "query": value, "hide": 2}


def _pair_variables(multi: bool = True) -> list[dict[str, Any]]:
    return [
        _variable("from_team", "Supplier", "handoff_opened_total", multi=multi),
        _variable("to_team", "Internal customer", "handoff_opened_total", multi=multi),
        _variable("milestone", "Milestone", "handoff_target_outcomes_total"),
        _variable("priority", "Priority", "handoff_opened_total"),
    ]


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[dict[str, Any]],
    layout: Layout,
    settings: OpsSettings,
    time_from: str = "now-24h",
) -> dict[str, Any]:
    """The dashboard JSON model."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["baton"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timezone": "browser",
        "links": [
            {
                "type": "dashboards",
                "tags": ["baton"],
                "asDropdown": True,
                "title": "Baton",
                "includeVars": True,
                "keepTime": True,
            },
        ],
        "templating": {
            "list": [
                _variable_datasource(),
                *variables,
                _constant("sla_url", settings.links.sla.rstrip("/")),
            ]
        },
        "annotations": {"list": []},
        "panels": layout.panels,
    }


# --------------------------------------------------------------------------- the dashboards


def overview(settings: OpsSettings) -> dict[str, Any]:
    """Every pair at a glance: compliance, budget, burn, overdue, queue growth, alerts."""
    pm = "pair_milestone"
    lay = Layout()
    lay.add(
        panel(
            "table",
            "SLO per pair and milestone",
            "On-time share over each pair's error-budget window (30 days, or the calendar month "
            "where the map says so), the objective, the error budget left and the 1h burn rate. "
            "Click a row to open the pair.",
            [
                target(f"1 - {BUDGET_ERROR_RATIO}{{{SEL_M}}}", ref="A", instant=True, table=True),
                target(
                    f"max by ({PM}) (handoff_slo_objective_ratio{{{SEL_M}}})",
                    ref="B",
                    instant=True,
                    table=True,
                ),
                target(f"{BUDGET_REMAINING}{{{SEL_M}}}", ref="C", instant=True, table=True),
                target(f"{burn_rate('1h')}{{{SEL_M}}}", ref="D", instant=True, table=True),
            ],
            "percentunit",
            links=[pair_link()],
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {
                            "Value #A": "on time",
                            "Value #B": "objective",
                            "Value #C": "budget left",
                            "Value #D": "burn rate 1h",
                        },
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "burn rate 1h"},
                    "properties": [{"id": "unit", "value": "x"}],
                },
            ],
        ),
        24,
        9,
    )
    lay.add(
        panel(
            "timeseries",
            "On-time share (1 day) against the objective",
            "Share of decided targets met over the last day, per pair and milestone; misses "
            "later retracted by a late event count as met. Dashed: each pair's objective.",
            [
                target(f"{ontime_ratio(pm, '1d')}{{{SEL_M}}}", CLOCK_LEGEND),
                target(
                    f"max by ({PM}) (handoff_slo_objective_ratio{{{SEL_M}}})",
                    "objective " + CLOCK_LEGEND,
                    "B",
                ),
            ],
            "percentunit",
            maximum=1,
            overrides=[
                {
                    "matcher": {"id": "byFrameRefID", "options": "B"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}
                    ],
                },
            ],
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Error budget burn rate (1 hour)",
            "How many times faster than the objective allows targets are missed. Above 14.4 "
            "(with the 5m window agreeing) pages; 6, 3 and 1 are the slower tiers.",
            [target(f"{burn_rate('1h')}{{{SEL_M}}}", CLOCK_LEGEND)],
            "x",
            thresholds=[("green", None), ("orange", 6), ("red", 14.4)],
            options={"legend": {"displayMode": "table", "placement": "right"}},
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "bargauge",
            "Overdue now, by pair",
            "Running or paused clocks past their deadline right now. Click a bar for sla's "
            "list of these handoffs (who holds each, since when).",
            [
                target(
                    f"sum by (from_team, to_team) (handoff_overdue_items{{{SEL_PM}}})",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "short",
            links=[overdue_link()],
            thresholds=[("green", None), ("red", 1)],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        8,
        8,
    )
    lay.add(
        panel(
            "bargauge",
            "Oldest overdue, by pair",
            "How long the longest-overdue handoff of each pair has been past its deadline "
            "(wall clock). A day or more escalates. Click for the overdue list.",
            [
                target(
                    "time() - min by (from_team, to_team) "
                    f"(handoff_oldest_overdue_deadline_timestamp_seconds{{{SEL_PM}}})",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "s",
            links=[overdue_link()],
            thresholds=[("orange", None), ("red", 86400)],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        8,
        8,
    )
    lay.add(
        panel(
            "table",
            "Firing alerts",
            "Baton's SLO and overdue alerts firing now, with the team they went to.",
            [
                target(
                    f'ALERTS{{alertstate="firing", category=~"slo|state", {SEL}}}',
                    instant=True,
                    table=True,
                )
            ],
            "short",
            links=[overdue_link()],
            transformations=[
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {
                            "Time": True,
                            "Value": True,
                            "__name__": True,
                            "alertstate": True,
                        }
                    },
                },
            ],
        ),
        8,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Arrivals against decisions (queue growth)",
            "Handoffs delivered to receiving teams per second against resolution targets "
            "decided (met or missed): arrivals above decisions for long means the queue grows.",
            [
                target(
                    f'sum(rate(handoff_opened_total{{{SEL}, priority=~"$priority"}}'
                    "[$__rate_interval]))",
                    "arrivals",
                ),
                target(
                    f'sum(rate(handoff_target_outcomes_total{{{SEL}, priority=~"$priority", '
                    'milestone="resolution"}[$__rate_interval]))',
                    "resolution decided",
                    "B",
                ),
            ],
            "reqps",
        ),
        24,
        7,
    )
    return dashboard(
        "baton-overview",
        "Baton — overview",
        "Every supplier→customer pair: SLO compliance, error budget, burn rate, overdue "
        "handoffs and queue growth. Generated by `make ops` from the process map.",
        _pair_variables(),
        lay,
        settings,
    )


def pair(settings: OpsSettings) -> dict[str, Any]:
    """One supplier->customer pair in depth."""
    pm, ppm = "pair_milestone", "pair_priority_milestone"
    one = 'from_team="$from_team", to_team="$to_team", milestone="$milestone"'
    one_p = f'{one}, priority=~"$priority"'
    lay = Layout()
    for window, title in (("1h", "last hour"), ("1d", "last day")):
        lay.add(
            panel(
                "stat",
                f"On time, {title}",
                f"Share of the pair's {window} decided targets that were met (net of retractions).",
                [target(f"{ontime_ratio(pm, window)}{{{one}}}", instant=True)],
                "percentunit",
                thresholds=[("red", None), ("green", 0.95)],
            ),
            4,
            5,
        )
    lay.add(
        panel(
            "stat",
            "On time, budget window",
            "Over the pair's error-budget window: 30 days, or the calendar month (UTC).",
            [target(f"1 - {BUDGET_ERROR_RATIO}{{{one}}}", instant=True)],
            "percentunit",
            thresholds=[("red", None), ("green", 0.95)],
        ),
        4,
        5,
    )
    lay.add(
        panel(
            "gauge",
            "Error budget left",
            "1 - (misses in the budget window / misses the objective allows). Below 0: the "
            "objective is not met over the window.",
            [target(f"{BUDGET_REMAINING}{{{one}}}", instant=True)],
            "percentunit",
            thresholds=[("red", None), ("orange", 0.25), ("green", 0.5)],
            minimum=-1,
            maximum=1,
        ),
        4,
        5,
    )
    lay.add(
        panel(
            "stat",
            "Overdue now",
            "Handoffs of the pair past this milestone's deadline right now. Click for sla's list.",
            [
                target(
                    f"sum by (from_team, to_team) (handoff_overdue_items{{{one_p}}})", instant=True
                )
            ],
            "short",
            links=[overdue_link()],
            thresholds=[("green", None), ("red", 1)],
        ),
        4,
        5,
    )
    lay.add(
        panel(
            "stat",
            "Oldest overdue",
            "How long the longest-overdue handoff has been past its deadline. Click for the "
            "overdue list.",
            [
                target(
                    "time() - min by (from_team, to_team) "
                    f"(handoff_oldest_overdue_deadline_timestamp_seconds{{{one_p}}})",
                    instant=True,
                )
            ],
            "s",
            links=[overdue_link()],
            thresholds=[("orange", None), ("red", 86400)],
        ),
        4,
        5,
    )
    lay.add(
        panel(
            "timeseries",
            "Burn rate by window",
            "Error ratio / error budget over each window. Pages need 1h and 5m above 14.4 or "
            "6h and 30m above 6; tickets 1d and 2h above 3 or 3d and 6h above 1.",
            [
                target(f"{burn_rate(w)}{{{one}}}", w, chr(65 + i))
                for i, w in enumerate(("5m", "1h", "6h", "1d", "3d"))
            ],
            "x",
            thresholds=[("green", None), ("orange", 6), ("red", 14.4)],
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Met and missed per priority (1 hour)",
            "Decided targets of the last hour per priority, net of retractions.",
            [
                target(
                    f"sum by (priority) ({decided(ppm, '1h')}{{{one_p}}})", "decided {{priority}}"
                ),
                target(
                    f"sum by (priority) ({missed(ppm, '1h')}{{{one_p}}})",
                    "missed {{priority}}",
                    "B",
                ),
            ],
            "short",
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Durations against the target",
            "Mean wall-clock time from delivery to the milestone (all priorities: the duration "
            "summary has no priority label, to keep the pair's series budget), and the "
            "strictest business-time target of the pair's routes at the chosen priorities "
            "(business time runs only in service hours: the usage ratio next to this compares "
            "exactly).",
            [
                target(
                    f"sum(rate(handoff_duration_seconds_sum{{{one}}}[$__rate_interval]))\n"
                    f"/ sum(rate(handoff_duration_seconds_count{{{one}}}[$__rate_interval]))",
                    "mean",
                ),
                target(f"min(handoff_target_seconds{{{one_p}}})", "target", "C"),
            ],
            "s",
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "heatmap",
            "Target used when the clock stopped",
            "Business time used / target per handoff: below 1 on time, above 1 late (how "
            "late); near misses sit just under 1.",
            [
                target(
                    "sum by (le) (increase(handoff_target_usage_ratio_bucket"
                    f"{{{one}}}[$__rate_interval]))",
                    "{{le}}",
                    heatmap=True,
                    exemplar=True,
                )
            ],
            "short",
            options={
                "calculate": False,
                "yAxis": {"unit": "percentunit"},
                "cellGap": 1,
                "color": {"scheme": "RdYlGn", "reverse": True},
            },
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Monthly compliance",
            "On-time share of the calendar month so far (UTC), per priority and overall.",
            [
                target(f"1 - {error_ratio(pm, 'month')}{{{one}}}", "month"),
                target(f"1 - {error_ratio(ppm, 'month')}{{{one_p}}}", "{{priority}}", "B"),
            ],
            "percentunit",
            maximum=1,
        ),
        24,
        7,
    )
    return dashboard(
        PAIR_DASHBOARD[0],
        "Baton — supplier→customer pair",
        "One supplier→customer pair and milestone: SLO, error budget, burn rates, overdue "
        "handoffs (linked to sla's lists), durations against the target. Generated by "
        "`make ops`.",
        [
            _variable(
                "from_team", "Supplier", "handoff_opened_total", multi=False, include_all=False
            ),
            _variable(
                "to_team",
                "Internal customer",
                'handoff_opened_total{from_team="$from_team"}',
                multi=False,
                include_all=False,
            ),
            _variable(
                "milestone",
                "Milestone",
                'handoff_target_outcomes_total{from_team="$from_team", to_team="$to_team"}',
                multi=False,
                include_all=False,
            ),
            _variable("priority", "Priority", "handoff_opened_total"),
        ],
        lay,
        settings,
        "now-7d",
    )


def flow(settings: OpsSettings) -> dict[str, Any]:
    """Per process: who waits for whom (bottlenecks)."""
    lay = Layout()
    as_customer = 'to_team=~"$team", priority=~"$priority"'
    as_supplier = 'from_team=~"$team", priority=~"$priority"'
    lay.add(
        panel(
            "bargauge",
            "Held by the team, by supplier",
            "Handoffs the team holds now (delivered to it, not completed), by the supplier that "
            "handed them over: the team's own queue.",
            [
                target(
                    f"sum by (from_team, to_team) (handoff_open_items{{{as_customer}}})",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "short",
            links=[pair_link()],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "bargauge",
            "Waiting for the team's deliveries",
            "Handoffs the team delivered that its customers hold now: where the team's work "
            "waits downstream.",
            [
                target(
                    f"sum by (from_team, to_team) (handoff_open_items{{{as_supplier}}})",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "short",
            links=[pair_link()],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "bargauge",
            "Overdue by receiving team",
            "Clocks past their deadline now, per team that holds them: the bottlenecks. Click "
            "for the overdue list.",
            [
                target(
                    f"sum by (from_team, to_team) (handoff_overdue_items{{{as_customer}}})",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "short",
            links=[overdue_link()],
            thresholds=[("green", None), ("red", 1)],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "table",
            "Slowest hops (mean time to resolution, 1 day)",
            "Mean wall-clock time from delivery to resolution per pair over the last day, all "
            "priorities: where cases spend their time.",
            [
                target(
                    "sum by (from_team, to_team) (rate(handoff_duration_seconds_sum"
                    '{milestone="resolution", to_team=~"$team"}[1d]))\n'
                    "/ sum by (from_team, to_team) (rate(handoff_duration_seconds_count"
                    '{milestone="resolution", to_team=~"$team"}[1d]))',
                    instant=True,
                    table=True,
                )
            ],
            "s",
            links=[pair_link()],
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "timeseries",
            "Misses per pair (1 day)",
            "Targets missed over the last day, net of retractions, per pair the team receives "
            "from.",
            [
                target(
                    f"sum by (from_team, to_team) ({missed('pair_priority_milestone', '1d')}"
                    f"{{{as_customer}}})",
                    PAIR_LEGEND,
                )
            ],
            "short",
        ),
        24,
        8,
    )
    return dashboard(
        "baton-flow",
        "Baton — who waits for whom",
        "Per process: what the team holds and for whom, what waits on its deliveries, and "
        "where handoffs are overdue. Generated by `make ops`.",
        [
            _variable("team", "Team", "handoff_open_items", include_all=True),
            _variable("priority", "Priority", "handoff_open_items"),
        ],
        lay,
        settings,
    )


def quality(settings: OpsSettings) -> dict[str, Any]:
    """Rework and satisfaction per pair."""
    lay = Layout()
    lay.add(
        panel(
            "bargauge",
            "Rework rate (7 days)",
            "Handoffs returned to the supplier as incomplete or inaccurate, per delivery: the "
            "quality defects of each supplier→customer pair.",
            [
                target(
                    f"sum by (from_team, to_team) (increase(handoff_rework_total{{{SEL}}}[7d]))\n"
                    "/ sum by (from_team, to_team) (increase(handoff_opened_total"
                    f"{{{SEL}}}[7d]))",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "percentunit",
            thresholds=[("green", None), ("orange", 0.05), ("red", 0.1)],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "bargauge",
            "Average satisfaction (7 days)",
            "The internal customer's rating of the handoffs it received, 1 (poor) to 5 "
            "(excellent), averaged per pair.",
            [
                target(
                    "sum by (from_team, to_team) (increase(handoff_satisfaction_rating_sum"
                    f"{{{SEL}}}[7d]))\n/ sum by (from_team, to_team) (increase("
                    f"handoff_satisfaction_rating_count{{{SEL}}}[7d]))",
                    PAIR_LEGEND,
                    instant=True,
                )
            ],
            "none",
            thresholds=[("red", None), ("orange", 3), ("green", 4)],
            minimum=1,
            maximum=5,
            options={"orientation": "horizontal", "displayMode": "gradient"},
        ),
        12,
        9,
    )
    lay.add(
        panel(
            "timeseries",
            "Rework over time",
            "Handoffs sent back to their supplier, per pair.",
            [
                target(
                    f"sum by (from_team, to_team) (increase(handoff_rework_total{{{SEL}}}"
                    "[$__rate_interval]))",
                    PAIR_LEGEND,
                )
            ],
            "short",
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "barchart",
            "Ratings given (7 days)",
            "How many handoffs got each rating or less (cumulative buckets of the rating "
            "histogram).",
            [
                target(
                    "sum by (le) (increase(handoff_satisfaction_rating_bucket"
                    f'{{{SEL}, le!="+Inf"}}[7d]))',
                    "≤ {{le}}",
                    instant=True,
                    table=True,
                )
            ],
            "short",
            options={"xField": "le"},
        ),
        12,
        8,
    )
    return dashboard(
        "baton-quality",
        "Baton — quality",
        "Rework (handoffs returned to the supplier) and the internal customers' satisfaction, "
        "per supplier→customer pair. Generated by `make ops`.",
        _pair_variables()[:2],
        lay,
        settings,
        "now-30d",
    )


def health(settings: OpsSettings) -> dict[str, Any]:
    """Baton itself: scrapes, lag, dead letters, rejections, decision delay."""
    jobs = "|".join(settings.jobs.all())
    lay = Layout()
    lay.add(
        panel(
            "stat",
            "Services up",
            "1 when Prometheus can scrape the service.",
            [target(f'up{{job=~"{jobs}"}}', "{{job}}", instant=True)],
            "none",
            thresholds=[("red", None), ("green", 1)],
        ),
        12,
        5,
    )
    lay.add(
        panel(
            "stat",
            "Process map version in force",
            "The version of the process map routing applies (0 until one is in force).",
            [target("max(handoff_process_map_version)", instant=True)],
            "none",
        ),
        6,
        5,
    )
    lay.add(
        panel(
            "stat",
            "Unreadable changelog records",
            "Records sla could not decode when it rebuilt its state: those handoffs are lost "
            "to the clocks (pages).",
            [target("sum(handoff_sla_changelog_unreadable_total)", instant=True)],
            "short",
            thresholds=[("green", None), ("red", 1)],
        ),
        6,
        5,
    )
    lay.add(
        panel(
            "timeseries",
            "Consumer lag",
            "Records between each consumer group's committed position and the partitions' end.",
            [target("sum by (group, topic) (handoff_consumer_lag_records)", "{{group}} {{topic}}")],
            "short",
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Events processed, by result",
            "Events consumed per second: ok, duplicate, invalid (dead-lettered), error.",
            [
                target(
                    "sum by (job, result) (rate(handoff_events_processed_total[$__rate_interval]))",
                    "{{job}} {{result}}",
                )
            ],
            "reqps",
        ),
        12,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Dead letters, by upstream system",
            "Events refused downstream and dead-lettered, per refusing service, upstream "
            "system (the posting key) and reason; intake's GET /v1/rejections lists them.",
            [
                target(
                    "sum by (service, source, reason) (increase(handoff_dead_letters_total"
                    "[$__rate_interval]))",
                    "{{source}}: {{service}} {{reason}}",
                )
            ],
            "short",
        ),
        8,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Routing rejections, by reason",
            "Opening events the process map cannot route: unknown process, kind, or no route.",
            [
                target(
                    "sum by (reason) (increase(handoff_routing_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            "short",
        ),
        8,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Intake: accepted by upstream system, refused by reason",
            "Events accepted per second per upstream system (API key name), and requests "
            "refused at the door per reason (nothing of them was accepted).",
            [
                target(
                    "sum by (source) (rate(handoff_intake_events_total[$__rate_interval]))",
                    "accepted from {{source}}",
                ),
                target(
                    "sum by (reason) (rate(handoff_intake_refused_requests_total"
                    "[$__rate_interval]))",
                    "refused: {{reason}}",
                    "B",
                ),
            ],
            "reqps",
        ),
        8,
        8,
    )
    lay.add(
        panel(
            "timeseries",
            "Breach detection delay and transaction time (p99)",
            "From a deadline to its missed decision committed to Kafka, and sla's Kafka "
            "transaction duration (99th percentiles).",
            [
                target(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f'handoff_breach_detection_delay_seconds_bucket{{job="{settings.jobs.sla}"}}'
                    "[$__rate_interval])))",
                    "breach detection p99",
                ),
                target(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    "handoff_sla_transaction_seconds_bucket[$__rate_interval])))",
                    "transaction p99",
                    "B",
                ),
            ],
            "s",
        ),
        24,
        8,
    )
    return dashboard(
        "baton-health",
        "Baton — system health",
        "Baton's own health: scrapes, consumer lag, dead letters, routing and intake "
        "rejections, breach-detection delay. Generated by `make ops`.",
        [],
        lay,
        settings,
        "now-6h",
    )


def dashboard_files(settings: OpsSettings) -> dict[str, dict[str, Any]]:
    """File name -> dashboard (deploy/grafana/dashboards/)."""
    return {
        f"{d['uid']}.json": d
        for d in (
            overview(settings),
            pair(settings),
            flow(settings),
            quality(settings),
            health(settings),
        )
    }


def provisioning(settings: OpsSettings) -> dict[str, dict[str, Any]]:
    """Grafana's provisioning files (deploy/grafana/provisioning/)."""
    sla = settings.links.sla.rstrip("/")
    return {
        "datasources/baton.yaml": {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "Prometheus (Baton)",
                    "uid": DATASOURCE_UID,
                    "type": "prometheus",
                    "access": "proxy",
                    "url": settings.prometheus_url,
                    "isDefault": True,
                    "editable": False,
                    "jsonData": {
                        "timeInterval": "15s",
                        "httpMethod": "POST",
                        # A usage exemplar's handoff id opens the handoff in sla.
                        "exemplarTraceIdDestinations": [
                            {"name": "handoff_id", "url": f"{sla}/v1/handoffs/${{__value.raw}}"}
                        ],
                    },
                }
            ],
        },
        "dashboards/baton.yaml": {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "baton",
                    "folder": "Baton",
                    "type": "file",
                    "disableDeletion": True,
                    "allowUiUpdates": False,
                    "updateIntervalSeconds": 60,
                    "options": {"path": settings.dashboards_path},
                }
            ],
        },
    }
