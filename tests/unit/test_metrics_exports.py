"""The process-mining exports read back by PM4Py (a test-only dependency: PM4Py is AGPL):
CSV, XES (IEEE 1849) and OCEL 2.0 JSON hold every event of the window, process or case,
with its case, activity, team and exact timestamp."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pm4py
import pytest

import builders as b
from metrics.domain.eventlog import csv_chunks
from metrics.domain.reports import Window
from test_metrics_reports import SW, app_with, client_of, feed, rated, rejected

T = b.T0
HP = ("hr", "payroll")


def at(m: float) -> datetime:
    # Microseconds on purpose: exports keep them.
    return T + timedelta(minutes=m, microseconds=123_456)


def cases() -> list[Any]:
    """Two cases: case-h1 crosses sales -> warehouse twice (rework), case-h2 hr -> payroll."""
    return [
        b.submitted("h1", *SW, at=at(0)),
        b.accepted("h1", at=at(5)),
        rejected("h1", 'missing <qty> & "unit"\x07', at(9)),  # XML-hostile, a control char
        b.submitted("h1", *SW, at=at(20)),
        b.event("completed", "h1", at(40)),
        rated("h1", 4, "résumé: fine ✓", at(41)),
        b.submitted("h2", *HP, at=at(1)),
        b.event("paused", "h2", at(2)),
        b.event("resumed", "h2", at(3)),
        b.event("completed", "h2", at(30)),
    ]


def expected(events: list[Any], case: str | None = None) -> list[tuple[str, str, datetime]]:
    rows = [(f"case-{e.key}", e.event_type.removeprefix("handoff."), e.occurred_at) for e in events]
    return sorted(r for r in rows if case is None or r[0] == case)


async def export(tmp_path: Path, name: str, query: str = "") -> Path:
    app = app_with()
    feed(app, *cases())
    async with client_of(app) as client:
        answer = await client.get(f"/v1/exports/{name}{query}")
    assert answer.status_code == 200, answer.text
    path = tmp_path / name
    path.write_bytes(answer.content)
    return path


def triples(df: pd.DataFrame, case: str, activity: str, ts: str) -> list[tuple[str, str, datetime]]:
    return sorted(
        (str(c), str(a), pd.Timestamp(t).to_pydatetime())
        for c, a, t in zip(df[case], df[activity], df[ts], strict=True)
    )


async def test_the_csv_export_reads_back_with_every_event_and_timestamp(tmp_path: Path) -> None:
    path = await export(tmp_path, "events.csv")
    df = pm4py.format_dataframe(
        pd.read_csv(path, dtype=str),
        case_id="case_id",
        activity_key="activity",
        timestamp_key="timestamp",
    )
    assert triples(df, "case:concept:name", "concept:name", "time:timestamp") == expected(cases())
    assert df["case:concept:name"].nunique() == 2
    teams = dict(zip(df["activity"] + "@" + df["case_id"], df["team"], strict=False))
    assert teams["submitted@case-h1"] == "sales" and teams["accepted@case-h1"] == "warehouse"
    assert "résumé: fine ✓" in set(df["comment"].dropna())


async def test_the_xes_export_reads_back_one_trace_per_case(tmp_path: Path) -> None:
    path = await export(tmp_path, "events.xes")
    df = pm4py.read_xes(str(path))
    assert triples(df, "case:concept:name", "concept:name", "time:timestamp") == expected(cases())
    assert set(df["org:resource"]) == {"sales", "warehouse", "hr", "payroll"}
    (reason,) = df[df["concept:name"] == "rejected"]["reason"]
    assert reason == 'missing <qty> & "unit"'  # escaped, the control character dropped
    variants = pm4py.get_variants(df)
    assert len(variants) == 2


async def test_the_ocel_export_reads_back_with_cases_handoffs_and_teams(tmp_path: Path) -> None:
    path = await export(tmp_path, "events.ocel.json")
    ocel = pm4py.read_ocel2_json(str(path))
    events = ocel.events
    assert len(events) == len(cases())
    assert triples(
        events.assign(case=[r for r in _case_of(ocel, events)]),
        "case",
        "ocel:activity",
        "ocel:timestamp",
    ) == expected(cases())
    types = ocel.objects["ocel:type"].value_counts().to_dict()
    assert types == {"case": 2, "handoff": 2, "team": 4}
    o2o = ocel.o2o
    assert len(o2o[o2o["ocel:qualifier"] == "part of"]) == 2


def _case_of(ocel: Any, events: pd.DataFrame) -> list[str]:
    relations = ocel.relations
    case_rel = relations[relations["ocel:type"] == "case"]
    by_event = dict(zip(case_rel["ocel:eid"], case_rel["ocel:oid"], strict=True))
    return [by_event[e].removeprefix("case:") for e in events["ocel:eid"]]


@pytest.mark.parametrize("name", ["events.csv", "events.xes", "events.ocel.json"])
async def test_exports_filter_by_case_process_and_window(tmp_path: Path, name: str) -> None:
    one_case = expected(cases(), "case-h2")
    for query, want in [
        ("?case=case-h2", one_case),
        ("?process=payroll", one_case),
        (
            f"?from={at(10).isoformat()}".replace("+", "%2B"),
            [r for r in expected(cases()) if r[2] >= at(10)],
        ),
    ]:
        path = await export(tmp_path, name, query)
        if name == "events.csv":
            df = pd.read_csv(path, dtype=str)
            got = triples(df, "case_id", "activity", "timestamp")
        elif name == "events.xes":
            df = pm4py.read_xes(str(path))
            got = triples(df, "case:concept:name", "concept:name", "time:timestamp")
        else:
            ocel = pm4py.read_ocel2_json(str(path))
            events = ocel.events.assign(case=_case_of(ocel, ocel.events))
            got = triples(events, "case", "ocel:activity", "ocel:timestamp")
        assert got == want, (name, query)


def test_the_log_is_written_chunk_by_chunk_never_whole() -> None:
    app = app_with()
    feed(
        app,
        *[b.submitted(f"x{i}", *SW, at=at(i / 100)) for i in range(4500)],
    )
    queries = app.state.queries
    everything = Window(T - timedelta(days=1), T + timedelta(days=1), "all", "UTC")
    pieces = list(csv_chunks(queries.event_log(everything, process=None, case_id=None, chunk=1000)))
    assert len(pieces) == 1 + 5  # the header, then one piece per chunk of the store's cursor
    assert sum(p.count("\r\n") for p in pieces) == 4501


async def test_events_of_the_same_instant_keep_the_order_they_were_posted_in(
    tmp_path: Path,
) -> None:
    app = app_with()
    same = at(0)
    kinds = ["submitted", "rejected", "submitted", "accepted", "completed", "rated"]
    feed(
        app,
        *[
            b.submitted("h9", *SW, at=same).model_copy(update={"event_id": f"z{i}"})
            if kind == "submitted"
            else b.event(kind, "h9", same, seq=str(i)).model_copy(update={"event_id": f"a{i}"})
            for i, kind in enumerate(kinds)
        ],
    )
    async with client_of(app) as client:
        answer = await client.get("/v1/exports/events.csv")
    activities = [line.split(",")[3] for line in answer.text.splitlines()[1:]]
    assert activities == kinds  # not by event id (a0 < z0), not by type
