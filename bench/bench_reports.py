"""Report queries over a year of history at the BPI Challenge 2013's size.

No Kafka: the handoffs of the BPI Challenge 2013 incident log (../shared/datasets/VINST-new.csv,
7,554 cases, 649 support teams) are derived from its team changes, turned into the decisions
and lifecycle events Baton would have published, and stored in a DuckDB file through the
report store's own recorder (what the consumer does with each Kafka batch). Then every report
is timed against that file.

    .venv/bin/python bench/bench_reports.py [--scale 1] [--repeat 5] [--csv PATH]

Derivation (what an integrator would do): a handoff from team A to team B is submitted at A's
last event before B's first, accepted at B's first event, completed at B's last event (when B
hands on, or the case ends). Each case keeps its own durations; the cases' starts are spread
over one year, ending now. Priority from the log's impact (Major P1 .. Low P4); targets on a
24x7 calendar (response 15m/30m/2h/4h, resolution 4h/8h/24h/40h by priority). A handoff that
comes straight back (A -> B -> A) is rework ("sent back by B"); a quarter of the handoffs are
rated (1..5, most with a comment); one breach in fifty is later retracted (a late event).
`--scale N` stores N copies of the year (distinct ids) to show the headroom.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "services")]

from metrics.adapters.history import HistoryStore  # noqa: E402
from metrics.api.review import review_html  # noqa: E402
from metrics.domain.eventlog import xes_chunks  # noqa: E402
from metrics.domain.reports import (  # noqa: E402
    Grouping,
    ReportFilter,
    StoreState,
    Window,
    month_window,
    report_csv,
)
from metrics.handlers import HistoryRecorder  # noqa: E402
from metrics.queries import ReportQueries  # noqa: E402
from shared.contracts import ProcessMapV1  # noqa: E402
from shared.events import derived_id, utc_text  # noqa: E402
from shared.kafka import Received  # noqa: E402

DATASET = next(
    (
        p / "shared" / "datasets" / "VINST-new.csv"
        for p in ROOT.parents
        if (p / "shared" / "datasets" / "VINST-new.csv").exists()
    ),
    ROOT.parent / "shared" / "datasets" / "VINST-new.csv",
)
"""../shared/datasets beside the checkout (or beside a parent folder, for worktrees)."""
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
PRIORITY = {"Major": "P1", "High": "P2", "Medium": "P3", "Low": "P4"}
TARGETS = {"P1": (900, 14400), "P2": (1800, 28800), "P3": (7200, 86400), "P4": (14400, 144000)}
COMMENTS = ["quick and complete", "had to chase twice", "missing logs", "fine", "", "great"]


def slug(team: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", team.lower()).strip("-")[:60] or "unknown"


@dataclass(frozen=True, slots=True)
class Handoff:
    id: str
    case: str
    source: str
    target: str
    priority: str
    submitted: datetime
    accepted: datetime
    completed: datetime
    sent_back: bool


def read_cases(dataset: Path) -> dict[str, list[tuple[datetime, str, str]]]:
    """case -> [(time, team, impact)], in the file's order (sorted by time per case)."""
    cases: dict[str, list[tuple[datetime, str, str]]] = {}
    with dataset.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            at = datetime.fromisoformat(row["Change Date+Time"]).astimezone(UTC)
            cases.setdefault(row["SR Number"], []).append(
                (at, slug(row["Involved ST"]), row["SR Latest Impact"])
            )
    return cases


def derive(cases: dict[str, list[tuple[datetime, str, str]]], copy: int) -> list[Handoff]:
    """Handoffs from the team changes of every case, each case moved into the last year."""
    rng = random.Random(2013 + copy)
    out: list[Handoff] = []
    for case, events in cases.items():
        start = events[0][0]
        span = events[-1][0] - start
        # Spread case starts over the year, keeping each case's own durations.
        offset = NOW - YEAR + (YEAR - span) * rng.random() - start
        runs: list[tuple[str, datetime, datetime, str]] = []  # team, first, last, impact
        for at, team, impact in events:
            if runs and runs[-1][0] == team:
                runs[-1] = (team, runs[-1][1], at, impact)
            else:
                runs.append((team, at, at, impact))
        for i in range(1, len(runs)):
            sender, receiver = runs[i - 1], runs[i]
            back = i + 1 < len(runs) and runs[i + 1][0] == sender[0]
            out.append(
                Handoff(
                    id=f"{case}-{i}-c{copy}",
                    case=f"{case}-c{copy}",
                    source=sender[0],
                    target=receiver[0],
                    priority=PRIORITY.get(receiver[3], "P3"),
                    submitted=sender[2] + offset,
                    accepted=receiver[1] + offset,
                    completed=receiver[2] + offset,
                    sent_back=back,
                )
            )
    return out


def envelope(event_type: str, key: str, at: datetime, data: dict[str, Any], **extra: Any) -> bytes:
    import orjson

    doc = {
        "event_id": derived_id(key, event_type, *(str(v) for v in extra.values()), utc_text(at)),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": utc_text(at),
        "recorded_at": utc_text(at),
        "producer": "bench",
        "key": key,
        "data": data,
    }
    doc.update({k: v for k, v in extra.items() if k in ("route", "correlation_id")})
    out: bytes = orjson.dumps(doc)
    return out


def standard(route_id: str) -> dict[str, Any]:
    return {
        "route_id": route_id,
        "version": 1,
        "calendar": {"id": "24x7", "timezone": "UTC", "always_open": True},
        "targets": {
            p: {"response": f"{r}s", "resolution": f"{s}s"} for p, (r, s) in TARGETS.items()
        },
        "objective": 0.9,
    }


def records_of(h: Handoff, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """The decisions and routed lifecycle events Baton would have published for a handoff."""
    route_id = f"{h.source}-to-{h.target}"[:63].strip("-")
    facts = {
        "case_id": h.case,
        "kind": "incident",
        "from": h.source,
        "to": h.target,
        "priority": h.priority,
        "cycle": 1,
        "route_id": route_id,
        "standard_version": 1,
    }
    route = {"from": h.source, "to": h.target, "kind": "incident", "standard": standard(route_id)}
    yield "routed", envelope(
        "handoff.submitted", h.id, h.submitted,
        {"case_id": h.case, "kind": "incident", "from": h.source, "priority": h.priority},
        route=route, correlation_id=h.case,
    )  # fmt: skip
    yield (
        "decisions",
        envelope("sla.opened", h.id, h.submitted, {**facts, "opened_at": utc_text(h.submitted)}),
    )
    for clock, reached, kind in (
        ("response", h.accepted, "handoff.accepted"),
        ("resolution", h.completed, "handoff.completed"),
    ):
        target = TARGETS[h.priority][clock == "resolution"]
        deadline = h.submitted + timedelta(seconds=target)
        elapsed = max((reached - h.submitted).total_seconds(), 0.0)
        base = {**facts, "clock": clock, "target_seconds": float(target),
                "deadline": utc_text(deadline), "decided_at": utc_text(reached)}  # fmt: skip
        timed = {"reached_at": utc_text(reached), "elapsed_business_seconds": elapsed,
                 "elapsed_wall_seconds": elapsed}  # fmt: skip
        if reached <= deadline:
            if rng.random() < 0.02:  # a breach emitted, then withdrawn by a late event
                yield (
                    "decisions",
                    envelope("sla.missed", h.id, deadline, {**base, "revision": 0}, c=clock),
                )
                yield "decisions", envelope(
                    "sla.retracted", h.id, deadline, {**base, "revision": 0, "retracted": "missed",
                    "reason": "a late event shows the milestone was reached in time"}, c=clock, r=1,
                )  # fmt: skip
                yield (
                    "decisions",
                    envelope("sla.met", h.id, reached, {**base, **timed, "revision": 1}, c=clock),
                )
            else:
                yield "decisions", envelope("sla.met", h.id, reached, {**base, **timed}, c=clock)
        else:
            warned = h.submitted + timedelta(seconds=target * 0.75)
            yield (
                "decisions",
                envelope("sla.warning", h.id, warned, {**base, "threshold": 75}, c=clock),
            )
            yield "decisions", envelope("sla.missed", h.id, deadline, base, c=clock)
        yield (
            "decisions",
            envelope(
                "sla.stopped", h.id, reached, {**base, **timed, "late": reached > deadline}, c=clock
            ),
        )
        yield "routed", envelope(kind, h.id, reached, {}, correlation_id=h.case)
    if h.sent_back:
        yield "routed", envelope(
            "handoff.rejected", h.id, h.completed, {"reason": f"sent back by {h.target}"},
            correlation_id=h.case,
        )  # fmt: skip
    if rng.random() < 0.25:
        rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 2, 4, 6, 5])[0]
        comment = rng.choice(COMMENTS)
        data: dict[str, Any] = {"rating": rating, **({"comment": comment} if comment else {})}
        yield "routed", envelope("handoff.rated", h.id, h.completed + timedelta(hours=1), data)


def process_map(handoffs: list[Handoff]) -> ProcessMapV1:
    teams = sorted({t for h in handoffs for t in (h.source, h.target)})
    pairs = sorted({(h.source, h.target) for h in handoffs})
    return ProcessMapV1.model_validate(
        {
            "version": 1,
            "published_at": NOW,
            "calendars": [{"id": "24x7", "timezone": "UTC", "always_open": True}],
            "processes": [{"id": t, "name": t, "calendar": "24x7"} for t in teams],
            "routes": [
                {
                    "id": f"{f}-to-{t}"[:63].strip("-"),
                    "from": f,
                    "kind": "incident",
                    "to": t,
                    "standard": standard(f"{f}-to-{t}"[:63].strip("-")),
                }
                for f, t in pairs
            ],
        }
    )


def timed(what: str, repeat: int, run: Callable[[], Any]) -> tuple[str, list[float], Any]:
    times = []
    result: Any = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return what, times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="copies of the year stored")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dataset", type=Path, default=DATASET, help="VINST-new.csv")
    parser.add_argument("--db", type=Path, default=None, help="DuckDB file (default: temporary)")
    args = parser.parse_args()

    cases = read_cases(args.dataset)
    handoffs = [h for copy in range(args.scale) for h in derive(cases, copy)]
    teams = {t for h in handoffs for t in (h.source, h.target)}
    print(
        f"history: {len(cases) * args.scale:,} cases, {len(handoffs):,} handoffs between "
        f"{len(teams)} teams, {len({(h.source, h.target) for h in handoffs}):,} pairs "
        f"(BPI Challenge 2013 x{args.scale}, one year ending {NOW:%Y-%m-%d})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench-history.duckdb"
        store = HistoryStore(str(path))
        recorder = HistoryRecorder(store, lambda *_: None)
        the_map = process_map(handoffs)
        recorder.on_process_map(the_map)
        rng = random.Random(9)
        offsets = {"decisions": 0, "routed": 0}
        batch: list[Received] = []
        started = time.perf_counter()
        stored = 0
        for h in handoffs:
            for topic, value in records_of(h, rng):
                batch.append(Received(topic, 0, offsets[topic], 0, h.id.encode(), value, ()))
                offsets[topic] += 1
                if len(batch) == 2000:  # the consumer's batch size
                    recorder.record(batch)
                    stored += len(batch)
                    batch = []
        recorder.record(batch)
        stored += len(batch)
        load = time.perf_counter() - started
        counts = store.counts()
        size = path.stat().st_size / 2**20
        print(
            f"stored {stored:,} records ({counts['decisions']:,} decisions, "
            f"{counts['lifecycle']:,} lifecycle events) through the recorder in {load:.1f} s "
            f"({stored / load:,.0f} records/s); file {size:.1f} MiB"
        )
        queries = ReportQueries(
            store,
            state=lambda: StoreState(caught_up=True, lag_records=0),
            process_map=lambda: the_map,
            sla_url="http://127.0.0.1:8003",
            clock_now=lambda: NOW,
        )
        year = Window(NOW - YEAR, NOW, "last 365 days", "UTC")
        busiest_month = month_window(2026, 6, "UTC")
        busiest = statistics.mode(h.target for h in handoffs)
        none = ReportFilter()
        one = ReportFilter(to_process=busiest)

        def everything() -> Iterator[list[Any]]:
            return queries.event_log(year, process=None, case_id=None)

        runs = [
            timed("pairs, a year, page of 50", args.repeat,
                  lambda: queries.report(Grouping.PAIRS, year, none)),
            timed("pairs, a year, page of 1000", args.repeat,
                  lambda: queries.report(Grouping.PAIRS, year, none, limit=1000)),
            timed("pairs, one month", args.repeat,
                  lambda: queries.report(Grouping.PAIRS, busiest_month, none)),
            timed("suppliers, a year", args.repeat,
                  lambda: queries.report(Grouping.SUPPLIERS, year, none)),
            timed("customers, a year", args.repeat,
                  lambda: queries.report(Grouping.CUSTOMERS, year, none)),
            timed("routes and versions, a year", args.repeat,
                  lambda: queries.report(Grouping.ROUTES, year, none)),
            timed(f"one process ({busiest}) as customer, a year", args.repeat,
                  lambda: queries.report(Grouping.CUSTOMERS, year, one)),
            timed("late handoffs, a year, page of 50", args.repeat,
                  lambda: queries.late(year, none, limit=50, offset=0)),
            timed("pairs, a year, as CSV", args.repeat,
                  lambda: list(report_csv(queries.report(Grouping.PAIRS, year, none)))),
            timed(f"management review of {busiest}, one month + 12-month trend", args.repeat,
                  lambda: review_html(queries.review(busiest, busiest_month))),  # type: ignore[arg-type]
            timed("XES export of the whole year (streamed)", 1,
                  lambda: sum(len(c) for c in xes_chunks(everything()))),
        ]  # fmt: skip
        print(f"{'query':<62} {'median ms':>10} {'max ms':>8}")
        for what, times, _ in runs:
            print(f"{what:<62} {statistics.median(times):>10.1f} {max(times):>8.1f}")
        first = runs[0][2]
        print(
            f"(a year: {first.page.total:,} pairs with activity; "
            f"XES export {runs[-1][2] / 2**20:.1f} MiB)"
        )
        store.close()


if __name__ == "__main__":
    main()
