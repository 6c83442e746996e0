"""Service hours in a real Alertmanager (Debian's 0.25, with the generated configuration):
a ticket for a team whose calendar is closed now waits, a ticket for a team at work is
delivered, and a page goes out whatever the hour.

Alertmanager keeps real time, so the calendars are built around the real date: the closed
team works only on a weekday three days from now.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from metrics import ops
from metrics.domain.ops.alertmanager import alertmanager_config
from metrics.domain.ops.model import OpsModel
from metrics.domain.ops.settings import OpsSettings
from promtools import Daemon, Webhook
from shared.clock import SystemClock
from shared.contracts import WEEKDAYS, CalendarV1
from support import wait_for

MAP = ops.load_map(ops.DEFAULT_MAP)


def map_with_hours(closed_team_calendar: CalendarV1, open_calendar: CalendarV1) -> Any:
    calendars = [c for c in MAP.calendars if c.id not in ("be-office", "fr-payroll")]
    return MAP.model_copy(update={"calendars": (*calendars, closed_team_calendar, open_calendar)})


def alert(name: str, severity: str, to_team: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, "category": "slo",
                   "from_team": "service-desk", "to_team": to_team, "milestone": "response"},
        "annotations": {"summary": name},
    }  # fmt: skip


async def test_tickets_wait_for_the_teams_service_hours_and_pages_do_not(
    tmp_path: Path,
) -> None:
    now = SystemClock().now().astimezone(ZoneInfo("Europe/Brussels"))
    later = WEEKDAYS[(now + timedelta(days=3)).weekday()]
    # it-l2-network works on be-office: now closed (one hour, three days from now).
    closed = CalendarV1(id="be-office", timezone="Europe/Brussels", hours={later: ("09:00-10:00",)})
    # payroll works on fr-payroll: now open (every day, all day, but not a 24x7 calendar).
    open_ = CalendarV1(
        id="fr-payroll", timezone="Europe/Paris", hours={"mon-sun": ("00:00-24:00",)}
    )
    with Webhook() as hook:
        settings = OpsSettings(webhook_url=hook.url, group_wait="1s")
        config = alertmanager_config(OpsModel.from_map(map_with_hours(closed, open_)), settings)
        path = tmp_path / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        am = Daemon(
            "prometheus-alertmanager",
            [f"--config.file={path}", f"--storage.path={tmp_path / 'am'}",
             "--cluster.listen-address="],
            "hours-alertmanager",
        )  # fmt: skip
        try:
            await am.ready()
            async with httpx.AsyncClient(base_url=am.url) as client:
                # In this order: the closed team's ticket group is flushed (and muted) first.
                for name, severity, team in (
                    ("ClosedTicket", "ticket", "it-l2-network"),
                    ("OpenTicket", "ticket", "payroll"),
                    ("ClosedPage", "page", "it-l2-network"),
                ):
                    r = await client.post("/api/v2/alerts", json=[alert(name, severity, team)])
                    assert r.status_code == 200, r.text

            def delivered() -> set[str]:
                return {a["labels"]["alertname"] for p in hook.payloads for a in p["alerts"]}

            await wait_for(lambda: {"OpenTicket", "ClosedPage"} <= delivered(), within=30,
                           what="the open team's ticket and the closed team's page")  # fmt: skip
        finally:
            am.stop()
    receivers = {p["receiver"] for p in hook.payloads}
    assert receivers == {"team-payroll", "team-it-l2-network-page"}
    assert "ClosedTicket" not in delivered()
