"""The Prometheus rules generated from the process map: up to date, valid for promtool, and the
alerting scenarios of deploy/prometheus/tests/ (fast burn pages, slow burn tickets, a retraction
pages nobody, low traffic pages nobody, the budget window, operational alerts)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from metrics import ops
from metrics.adapters.opsfiles import generated_command
from metrics.domain.ops.generate import documents
from metrics.domain.ops.model import OpsModel
from metrics.domain.ops.rules import POLICY
from metrics.domain.ops.settings import OpsSettings
from promtools import REPO, run
from shared.contracts import AlertSeverity, BudgetWindow

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules"
SCENARIOS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
MAP = ops.load_map(ops.DEFAULT_MAP)


def committed_options() -> list[str]:
    command = generated_command(RULES / "baton-slo.yml")
    assert command is not None, "deploy/prometheus/rules/baton-slo.yml has no generator header"
    args = shlex.split(command)[3:]  # after `python -m metrics.ops`
    args[1] = str(REPO / args[1])  # the map, relative to the repository
    return args


def test_committed_ops_files_are_what_the_example_map_generates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = ops.main([*committed_options(), "--check"])
    assert status == 0, (
        f"stale generated files: run `make ops` and commit\n{capsys.readouterr().err}"
    )


def test_a_hand_edit_of_a_generated_file_is_reported_stale(tmp_path: Path) -> None:
    assert ops.main([*committed_options(), "--out", str(tmp_path)]) == 0
    rules = tmp_path / "prometheus" / "rules" / "baton-slo.yml"
    rules.write_text(rules.read_text().replace("14.4", "20"))
    assert ops.main([*committed_options(), "--out", str(tmp_path), "--check"]) == 1


def test_promtool_accepts_the_rules_with_every_lint() -> None:
    result = run("promtool", "check", "rules", "--lint=all", *sorted(RULES.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_promtool_scenario(scenario: Path) -> None:
    result = run("promtool", "test", "rules", scenario)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scenarios_cover_what_the_issue_asks() -> None:
    assert {p.stem for p in SCENARIOS} >= {
        "fast-burn", "slow-burn", "retraction", "low-traffic", "budget-window", "operations",
    }  # fmt: skip


def test_a_pair_that_stopped_reporting_raises_one_alert_naming_it(tmp_path: Path) -> None:
    """Every pair of the map reports its objective but the heartbeat pair's response clock."""
    model = OpsModel.from_map(MAP)
    silent = ("service-desk", "it-l2-network", "response")
    series = [
        {
            "series": f'handoff_slo_objective_ratio{{job="baton-metrics",from_team="{s.from_team}",'
            f'to_team="{s.to_team}",milestone="{s.milestone}"}}',
            "values": "0.95x30",
        }
        for s in model.slos
        if (s.from_team, s.to_team, s.milestone) != silent
    ]
    test = {
        "rule_files": [str(RULES / "baton-slo.yml"), str(RULES / "baton-operations.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"alertname": "HandoffPairNotReported", "eval_time": "10m", "exp_alerts": []},
                    {
                        "alertname": "HandoffPairNotReported",
                        "eval_time": "20m",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "category": "platform",
                                    "severity": "ticket",
                                    "from_team": silent[0],
                                    "to_team": silent[1],
                                    "milestone": silent[2],
                                },
                                "exp_annotations": _annotations("HandoffPairNotReported", silent),
                            }
                        ],
                    },
                    {"alertname": "BatonAlertRulesStale", "eval_time": "20m", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "not-reported.yml"
    path.write_text(yaml.safe_dump(test))
    result = run("promtool", "test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def _annotations(alertname: str, pair: tuple[str, str, str]) -> dict[str, str]:
    doc = yaml.safe_load((RULES / "baton-operations.yml").read_text())
    (rule,) = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == alertname]
    out = {}
    for key, text in rule["annotations"].items():
        for label, value in zip(("from_team", "to_team", "milestone"), pair, strict=True):
            text = text.replace("{{ $labels." + label + " }}", value)
        out[key] = text
    return out


# --------------------------------------------------------------------------- from the map


def test_routes_of_one_pair_merge_their_alerting_the_strictest_winning() -> None:
    network = "    to: it-l2-network\n    standard:\n      calendar: 24x7\n"
    text = ops.DEFAULT_MAP.read_text().replace(
        network + "      targets: *incident-targets",
        network.replace("    standard:", "    alerting: {severity: ticket}\n    standard:")
        + "      targets: *incident-targets",
    )
    assert text != ops.DEFAULT_MAP.read_text()
    from routing.adapters.mapfile import parse_map_text

    draft = parse_map_text(text)
    pmap = MAP.model_copy(update={"routes": draft.routes})
    slos = {(s.from_team, s.to_team, s.milestone): s for s in OpsModel.from_map(pmap).slos}
    # incident-network now says ticket, but the heartbeat route on the same pair still pages.
    network = slos[("service-desk", "it-l2-network", "response")]
    assert network.severity is AlertSeverity.PAGE
    assert set(network.routes) >= {"incident-network", "heartbeat"}
    billing = slos[("shipping", "billing", "response")]
    assert (billing.severity, billing.window) == (AlertSeverity.TICKET, BudgetWindow.ROLLING_30D)
    payroll = slos[("hr", "payroll", "delivery")]
    assert payroll.window is BudgetWindow.CALENDAR_MONTH
    assert payroll.accountable == "hr"  # the supplier answers for its delivery promise


def test_a_new_route_gets_its_slo_policy_and_team_route_with_no_hand_written_promql() -> None:
    extra = MAP.routes[0].model_copy(
        update={"id": "new-route", "from_process": "billing", "to_process": "sales"}
    )
    pmap = MAP.model_copy(update={"routes": (*MAP.routes, extra)})
    docs = documents(pmap, OpsSettings(holiday_years=(2026,)))
    policies = [
        r["labels"]
        for g in docs["prometheus/rules/baton-slo.yml"]["groups"]
        for r in g["rules"]
        if r.get("record") == POLICY
    ]
    assert {"from_team": "billing", "to_team": "sales", "milestone": "response",
            "severity": "page", "window": "30d"} in policies  # fmt: skip
    routes = docs["alertmanager/alertmanager.yml"]["route"]["routes"]
    assert any(r["matchers"] == ['to_team="sales"'] for r in routes)


def test_every_alert_has_its_runbook_section() -> None:
    runbook = (DEPLOY / "prometheus" / "RUNBOOK.md").read_text()
    sections = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    alerts = {
        rule["alert"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert len(alerts) >= 14
    for alert in alerts:
        assert alert.lower() in sections, f"RUNBOOK.md has no section for {alert}"


def test_an_invalid_map_generates_nothing_and_lists_its_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "map.yaml"
    bad.write_text(ops.DEFAULT_MAP.read_text().replace("severity: ticket", "severity: pager"))
    out = tmp_path / "out"
    assert ops.main(["generate", str(bad), "--out", str(out)]) == 1
    assert "alerting.severity: Input should be 'page' or 'ticket'" in capsys.readouterr().err
    assert not out.exists()
