"""`baton import` without the services: reading CSV and XES logs with a mapping, deriving the
handoffs from team changes (examples, properties, and the BPI excerpt against an independent
count), and posting them resumably and idempotently (intake answered by httpx.MockTransport)."""

from __future__ import annotations

import gzip
import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from baton import cli, importer
from baton.client import BatchRefused, Client
from baton.derive import (
    Handoff,
    LogEvent,
    case_handoffs,
    derive,
    identifier,
    posted_events,
    priority_of,
)
from baton.eventlog import LogError, Mapping, read_log
from routing.adapters.bpi import handoff_pairs

EXCERPT = Path(__file__).resolve().parents[1] / "data" / "bpi2013-excerpt.csv"
T0 = datetime(2012, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trace(*teams: str) -> list[LogEvent]:
    return [LogEvent("C1", at(10 * i), team) for i, team in enumerate(teams)]


# --------------------------------------------------------------------------- derivation


def test_a_team_change_is_a_handoff_submitted_at_the_senders_last_event_accepted_at_the_receivers_first() -> (  # noqa: E501
    None
):
    first, second = case_handoffs("C1", trace("desk", "desk", "apps", "apps", "apps", "net"))
    assert (first.sender, first.receiver) == ("desk", "apps")
    assert (first.submitted_at, first.accepted_at) == (at(10), at(20))
    assert first.completed_at == at(40)  # apps' last event: it hands on
    assert (second.sender, second.receiver) == ("apps", "net")
    assert (second.submitted_at, second.accepted_at, second.completed_at) == (
        at(40),
        at(50),
        at(50),
    )


def test_the_last_receiver_completes_when_the_case_ends() -> None:
    (only,) = case_handoffs("C1", trace("desk", "apps", "apps", "apps"))
    assert only.completed_at == at(30)


def test_a_case_that_never_changes_team_has_no_handoff_and_events_without_team_do_not_move_it() -> (
    None
):
    assert case_handoffs("C1", trace("desk", "desk")) == []
    assert len(derive(trace("desk", "", "desk", " ", "apps"))) == 1


def test_events_are_taken_in_time_order_within_a_case_whatever_the_file_order() -> None:
    events = [LogEvent("C1", at(30), "apps"), LogEvent("C1", at(0), "desk")]
    (only,) = derive(events)
    assert (only.sender, only.receiver, only.submitted_at) == ("desk", "apps", at(0))


def test_ids_are_deterministic_and_a_case_that_is_not_an_identifier_gets_a_stable_one() -> None:
    assert [h.handoff_id for h in derive(trace("a", "b", "a"))] == ["C1#1", "C1#2"]
    odd = identifier("case 7 / ünïcode")
    assert odd == identifier("case 7 / ünïcode") != identifier("case 7 / unicode")
    assert odd.startswith("case-7") and " " not in odd


@pytest.mark.parametrize(
    ("value", "priority"),
    [("Major", "P1"), ("high", "P2"), ("Medium", "P3"), ("Low", "P4"), ("p2", "P2"), ("?", "P3")],
)
def test_log_priorities_read_as_batons(value: str, priority: str) -> None:
    assert priority_of(value) == priority


teams = st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=0, max_size=30)


@given(st.lists(teams, min_size=1, max_size=6))
def test_each_team_change_is_one_handoff_chained_and_posted_in_time_order(
    logs: list[list[str]],
) -> None:
    events = [
        LogEvent(f"case-{c}", at(7 * i + c), team)
        for c, log in enumerate(logs)
        for i, team in enumerate(log)
    ]
    handoffs = derive(events)
    changes = 0
    for log in logs:
        named = [t for t in log if t]
        changes += sum(1 for x, y in itertools.pairwise(named) if x != y)
    assert len(handoffs) == changes
    by_case: dict[str, list[Handoff]] = {}
    for h in handoffs:
        assert h.sender != h.receiver
        assert h.submitted_at <= h.accepted_at <= h.completed_at
        by_case.setdefault(h.case_id, []).append(h)
    for chain in by_case.values():
        for before, after in itertools.pairwise(chain):
            assert before.receiver == after.sender
            assert before.completed_at == after.submitted_at
    posted = posted_events(handoffs, "incident")
    assert len(posted) == 3 * len(handoffs)
    assert len({e["event_id"] for e in posted}) == len(posted)
    times = [datetime.fromisoformat(e["occurred_at"]) for e in posted]
    assert times == sorted(times)


def test_the_bpi_excerpt_gives_the_team_changes_an_independent_reading_counts() -> None:
    _, events = read_log(EXCERPT, Mapping())
    handoffs = derive(events)
    pairs = Counter(handoff_pairs(EXCERPT))  # routing's own reading, in file order
    assert len(events) == 410
    assert Counter((h.sender, h.receiver) for h in handoffs) == pairs
    assert len(handoffs) == sum(pairs.values()) == 115


# --------------------------------------------------------------------------- reading logs

XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <trace>
    <string key="concept:name" value="T1"/>
    <event><string key="concept:name" value="open"/><string key="org:group" value="Desk"/>
      <date key="time:timestamp" value="2012-03-01T10:00:00.000+01:00"/></event>
    <event><string key="concept:name" value="fix"/><string key="org:group" value="V5 3rd"/>
      <date key="time:timestamp" value="2012-03-01T11:00:00.000+01:00"/></event>
    <event><string key="concept:name" value="close"/><string key="org:group" value="V5 3rd"/>
      <date key="time:timestamp" value="2012-03-01T12:30:00.000+01:00"/></event>
  </trace>
  <trace>
    <string key="concept:name" value="T2"/>
    <event><string key="concept:name" value="open"/><string key="org:group" value="Desk"/>
      <date key="time:timestamp" value="2012-03-02T10:00:00Z"/></event>
  </trace>
</log>
"""


@pytest.mark.parametrize("name", ["log.xes", "log.xes.gz"])
def test_an_xes_log_plain_or_gzipped_reads_with_the_standard_keys(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    data = XES.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    mapping, events = read_log(path, Mapping())
    assert (mapping.case, mapping.timestamp, mapping.team) == (
        "case:concept:name",
        "time:timestamp",
        "org:group",
    )
    (only,) = derive(events)
    assert (only.case_id, only.sender, only.receiver) == ("T1", "Desk", "V5 3rd")
    assert only.completed_at == datetime(2012, 3, 1, 11, 30, tzinfo=UTC)
    submitted = posted_events([only], "incident")[0]
    assert submitted["data"]["from"] == "desk" and submitted["data"]["to"] == "v5-3rd"


def test_an_xes_log_without_groups_takes_the_resource(tmp_path: Path) -> None:
    path = tmp_path / "log.xes"
    path.write_text(XES.replace("org:group", "org:resource"), encoding="utf-8")
    mapping, events = read_log(path, Mapping())
    assert mapping.team == "org:resource" and len(derive(events)) == 1


def test_a_csv_log_reads_with_named_columns_and_a_timezone(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "ticket;when;who\nK1;2012-03-01 10:00;desk\nK1;2012-03-01 10:30;apps\n", encoding="utf-8"
    )
    mapping = Mapping(case="ticket", timestamp="when", team="who", timezone="Europe/Brussels")
    _, events = read_log(path, mapping)
    (only,) = derive(events)
    assert only.accepted_at == datetime(2012, 3, 1, 9, 30, tzinfo=UTC)


def test_a_missing_column_or_a_bad_timestamp_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("case,timestamp,team\nK1,yesterday,desk\n", encoding="utf-8")
    with pytest.raises(LogError, match="no column 'group' for the team"):
        read_log(path, Mapping(team="group"))
    with pytest.raises(LogError, match=r"log.csv:2: not an ISO 8601 timestamp: 'yesterday'"):
        read_log(path, Mapping())
    path.write_text("id,at\nK1,2012-03-01T10:00:00Z\n", encoding="utf-8")
    with pytest.raises(LogError, match=r"no column for the case .* --case-column"):
        read_log(path, Mapping())


# --------------------------------------------------------------------------- posting


class Intake:
    """intake's POST /v1/events, refusing the batch numbered `refuse` (1-based) once."""

    def __init__(self, refuse: int | None = None) -> None:
        self.keys: list[str] = []
        self.refuse = refuse

    def __call__(self, request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content)["events"]
        if self.refuse is not None and len(self.keys) + 1 == self.refuse:
            self.refuse = None
            return httpx.Response(
                503,
                json={"title": "Kafka unavailable", "status": 503},
                headers={"content-type": "application/problem+json"},
            )
        self.keys.append(request.headers["idempotency-key"])
        items = [
            {"event_id": e["event_id"], "handoff_id": e["handoff_id"], "type": e["type"]}
            for e in events
        ]
        return httpx.Response(202, json={"accepted": len(items), "events": items})


def test_an_import_resumes_after_the_acknowledged_batches_and_a_rerun_posts_nothing(
    tmp_path: Path,
) -> None:
    planned = importer.plan(EXCERPT, Mapping(), size=100)
    assert [len(b) for b in planned.batches] == [100, 100, 100, 45]
    state = importer.State(tmp_path / "state.json", planned)
    intake = Intake(refuse=3)
    with Client(retries=0, transport=httpx.MockTransport(intake)) as client:
        with pytest.raises(BatchRefused) as refused:
            importer.run(client, planned, state)
        assert refused.value.batch == 3 and refused.value.first == 200
        assert state.acknowledged() == 2
        resumed = importer.run(client, planned, state)
        assert (resumed.posted_batches, resumed.skipped_batches) == (2, 2)
        again = importer.run(client, planned, state)
        assert again.posted_batches == 0
        importer.run(client, planned, state, restart=True)
    keys = [planned.key(i) for i in range(4)]
    assert intake.keys == [*keys, *keys]  # a restart re-sends the same keys: intake's retry
    assert importer.plan(EXCERPT, Mapping(), size=100).import_id == planned.import_id


def test_a_state_file_of_another_import_is_not_taken_for_this_one(tmp_path: Path) -> None:
    planned = importer.plan(EXCERPT, Mapping(), size=100)
    other = importer.plan(EXCERPT, Mapping(), size=100, kind="request")
    assert other.import_id != planned.import_id
    importer.State(tmp_path / "s.json", other).save(4)
    assert importer.State(tmp_path / "s.json", planned).acknowledged() == 0


def test_baton_import_dry_run_counts_without_posting_and_a_bad_log_is_a_usage_error(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.app, ["-o", "json", "import", str(EXCERPT), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["handoffs"] == 115
    missing = runner.invoke(cli.app, ["import", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
