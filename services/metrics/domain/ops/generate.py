"""All generated ops files of one map: relative path (under deploy/) -> document."""

from __future__ import annotations

from typing import Any

from metrics.domain.ops.alertmanager import alertmanager_config
from metrics.domain.ops.dashboards import dashboard_files, provisioning
from metrics.domain.ops.model import OpsModel
from metrics.domain.ops.rules import rule_files
from metrics.domain.ops.settings import OpsSettings
from shared.contracts import ProcessMapV1


def documents(process_map: ProcessMapV1, settings: OpsSettings) -> dict[str, Any]:
    """Prometheus rules, Alertmanager config, Grafana dashboards and provisioning."""
    model = OpsModel.from_map(process_map)
    out: dict[str, Any] = {}
    for name, doc in rule_files(model, settings).items():
        out[f"prometheus/rules/{name}"] = doc
    out["alertmanager/alertmanager.yml"] = alertmanager_config(model, settings)
    for name, doc in dashboard_files(settings).items():
        out[f"grafana/dashboards/{name}"] = doc
    for name, doc in provisioning(settings).items():
        out[f"grafana/provisioning/{name}"] = doc
    return out
