"""Grafana dashboards as code: structure linted (uids, datasource variable, units,
descriptions, links to sla's lists) and every panel query run by promtool against series of the
real metric names (tests/ops/synthetic.py) and the generated recording rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from metrics.domain.ops.dashboards import DATASOURCE, DATASOURCE_UID
from promtools import REPO, run
from synthetic import MILESTONE, PAIR, PRIORITY, every_series

GRAFANA = REPO / "deploy" / "grafana"
FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DASHBOARDS = {p.stem: json.loads(p.read_text()) for p in FILES}
RULES = REPO / "deploy" / "prometheus" / "rules"
VALUES = {
    "from_team": PAIR[0], "to_team": PAIR[1], "team": PAIR[1], "milestone": MILESTONE,
    "priority": PRIORITY, "__rate_interval": "5m", "__interval": "1m",
}  # fmt: skip


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title + refId, expr) of every panel query."""
    return [
        (uid, f"{p['title']} [{t['refId']}]", t["expr"])
        for uid, d in DASHBOARDS.items()
        for p in panels(d)
        for t in p["targets"]
    ]


def test_the_five_dashboards_exist_with_fixed_uids() -> None:
    assert set(DASHBOARDS) == {
        "baton-overview", "baton-pair", "baton-flow", "baton-quality", "baton-health",
    }  # fmt: skip
    for name, d in DASHBOARDS.items():
        assert d["uid"] == name and len(d["uid"]) <= 40
        assert d["title"].startswith("Baton — ") and d["description"]
        assert "baton" in d["tags"] and d["editable"] is False


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_every_panel_has_the_datasource_variable_a_unit_and_a_description(uid: str) -> None:
    d = DASHBOARDS[uid]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids))
    for p in panels(d):
        where = f"{uid}: {p['title']!r}"
        assert p["datasource"] == DATASOURCE, where
        assert p["description"].strip(), where
        assert p["fieldConfig"]["defaults"]["unit"], where
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24, where
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), where
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, where
            for name in re.findall(r"\$\{?(\w+)", t["expr"]):
                assert name in variables or name.startswith("__"), f"{where}: ${name} undefined"


def test_team_and_priority_can_be_chosen_where_a_pair_is_shown() -> None:
    for uid in ("baton-overview", "baton-pair"):
        names = {v["name"] for v in DASHBOARDS[uid]["templating"]["list"]}
        assert {"from_team", "to_team", "priority"} <= names
    flow = {v["name"] for v in DASHBOARDS["baton-flow"]["templating"]["list"]}
    assert {"team", "priority"} <= flow


def test_every_overdue_panel_links_to_slas_overdue_list_of_the_pair() -> None:
    overdue = [
        (uid, p) for uid, d in DASHBOARDS.items() for p in panels(d)
        if any("overdue" in t["expr"] for t in p["targets"])
    ]  # fmt: skip
    assert len(overdue) >= 5
    for uid, p in overdue:
        urls = [link["url"] for link in p["fieldConfig"]["defaults"].get("links", [])]
        assert any(
            url.startswith("${sla_url}/v1/handoffs?view=overdue&from=${__field.labels.from_team}")
            for url in urls
        ), f"{uid}: {p['title']!r} has no link to the overdue list"
        sla = {v["name"]: v for v in DASHBOARDS[uid]["templating"]["list"]}["sla_url"]
        assert sla["query"] == "http://127.0.0.1:8003"


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    (source,) = yaml.safe_load((GRAFANA / "provisioning/datasources/baton.yaml").read_text())[
        "datasources"
    ]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    destinations = source["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations == [
        {"name": "handoff_id", "url": "http://127.0.0.1:8003/v1/handoffs/${__value.raw}"}
    ]
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/baton.yaml").read_text())[
        "providers"
    ]
    assert provider["allowUiUpdates"] is False and provider["type"] == "file"


def substitute(expr: str) -> str:
    out = re.sub(r"\$\{?(\w+)\}?", lambda m: VALUES[m.group(1)], expr)
    assert "$" not in out
    return out


async def test_every_panel_query_returns_data_on_series_of_the_real_metric_names(
    tmp_path: Path,
) -> None:
    cases = queries()
    assert len(cases) > 40
    test = {
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "evaluation_interval": "1m",
        "group_eval_order": [
            "baton-slo-short-windows",
            "baton-slo-policy-and-long-windows",
            "baton-slo-alerts",
        ],
        "tests": [
            {
                "interval": "1m",
                "input_series": await every_series(),
                "promql_expr_test": [
                    {
                        "expr": f"count(\n{substitute(expr)}\n) > bool 0",
                        "eval_time": "2h",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                    for _, _, expr in cases
                ],
            }
        ],
    }
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = run("promtool", "test", "rules", path)
    if result.returncode != 0:
        names = "\n".join(f"  {uid}: {title}" for uid, title, _ in cases)
        pytest.fail(f"panel queries without data:\n{result.stdout}{result.stderr}\nof\n{names}")


async def test_a_renamed_metric_leaves_its_panels_empty(tmp_path: Path) -> None:
    """The check above is not vacuous: rename one family and its panels find nothing."""
    series = [
        {**s, "series": s["series"].replace("handoff_overdue_items", "handoff_overdue_count")}
        for s in await every_series()
    ]
    (expr,) = [e for uid, t, e in queries() if uid == "baton-overview" and "Overdue now" in t]
    test = {
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": [
            {"expr": f"count(\n{substitute(expr)}\n) > bool 0", "eval_time": "1h",
             "exp_samples": [{"labels": "{}", "value": 1}]}]}],
    }  # fmt: skip
    path = tmp_path / "renamed.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    assert run("promtool", "test", "rules", path).returncode != 0
