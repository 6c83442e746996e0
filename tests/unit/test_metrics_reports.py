"""The report store and its reports without Kafka: rows in through the recorder (as the
consumer hands them over), figures out of the queries, and the report API over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

import builders as b
from metrics.adapters.history import HistoryStore, table_columns
from metrics.domain.history import (
    DECISION_COLUMNS,
    LIFECYCLE_COLUMNS,
    STANDARD_COLUMNS,
    standard_rows,
)
from metrics.domain.reports import (
    Grouping,
    InvalidReportQuery,
    ReportFilter,
    StoreState,
    month_window,
    resolve_window,
    trailing_months,
)
from metrics.handlers import HistoryRecorder
from metrics.main import create_app
from metrics.queries import ReportQueries
from metrics.settings import Settings
from shared.auth import ApiKey
from shared.clock import FakeClock
from shared.contracts import ClockName
from shared.events import Envelope
from shared.kafka import Received
from shared.settings import KafkaSettings

T = b.T0
MARCH = month_window(2026, 3, "UTC")
PAIRS = [("sales", "warehouse"), ("hr", "payroll"), ("sales", "billing")]
PROCESS_MAP = b.process_map(PAIRS, objective=0.9)
_offsets = itertools.count()


def at(m: float) -> datetime:
    return T + timedelta(minutes=m)


def received(envelopes: Iterable[Envelope], topic: str = "decisions") -> list[Received]:
    return [
        Received(topic, 0, next(_offsets), 0, e.key.encode(), e.to_bytes(), ()) for e in envelopes
    ]


def with_data(base: Envelope, data: dict[str, Any]) -> Envelope:
    return Envelope.model_validate({**base.model_dump(by_alias=True), "data": data})


def rated(handoff_id: str, rating: int, comment: str | None, when: datetime) -> Envelope:
    data: dict[str, Any] = {"rating": rating, **({"comment": comment} if comment else {})}
    return with_data(b.event("rated", handoff_id, when, rating=rating), data)


def rejected(handoff_id: str, reason: str, when: datetime) -> Envelope:
    return with_data(b.event("rejected", handoff_id, when), {"reason": reason})


class History:
    """An in-memory store, its recorder and its queries."""

    def __init__(self, store: HistoryStore | None = None) -> None:
        self.store = store or HistoryStore(":memory:")
        self.counted: list[tuple[str, str, int]] = []
        self.recorder = HistoryRecorder(self.store, lambda *c: self.counted.append(c))
        self.recorder.on_process_map(PROCESS_MAP)
        self.queries = ReportQueries(
            self.store,
            state=lambda: StoreState(caught_up=True, lag_records=0),
            process_map=lambda: PROCESS_MAP,
            sla_url="http://sla:8003/",
            clock_now=lambda: T,
        )

    def add(self, *envelopes: Envelope) -> None:
        self.recorder.record(received(envelopes))

    def report(self, grouping: Grouping = Grouping.PAIRS, **kw: Any) -> Any:
        return self.queries.report(grouping, kw.pop("window", MARCH), ReportFilter(**kw))


def response(
    kind: str, handoff_id: str, pair: tuple[str, str], when: datetime, **kw: Any
) -> Envelope:
    return b.decision(kind, handoff_id, *pair, clock="response", at=when, **kw)


SW = ("sales", "warehouse")


# --------------------------------------------------------------------------- windows


def test_a_calendar_month_is_read_in_the_reports_time_zone() -> None:
    w = resolve_window(now=T, tz_name="Europe/Brussels", month="2026-11")
    assert w.start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # CET, after the DST change
    assert w.end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    march = resolve_window(now=T, tz_name="Europe/Brussels", month="2026-03")
    assert march.end - march.start == timedelta(days=31, hours=-1)  # the DST day is shorter


def test_the_last_n_days_end_now_and_dates_are_local_midnights() -> None:
    w = resolve_window(now=T, tz_name="UTC", days=7)
    assert (w.start, w.end, w.label) == (T - timedelta(days=7), T, "last 7 days")
    assert resolve_window(now=T, tz_name="UTC").start == T - timedelta(days=30)
    span = resolve_window(now=T, tz_name="Europe/Brussels", start="2026-01-01", end="2026-02-01")
    assert span.start == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"month": "2026-13"}, "month"),
        ({"month": "Nov 2026"}, "month"),
        ({"month": "2026-11", "days": 3}, "days"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "to"),
        ({"start": "yesterday"}, "from"),
        ({"days": 0}, "days"),
    ],
)
def test_an_unusable_window_names_its_field(given: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidReportQuery) as caught:
        resolve_window(now=T, tz_name="UTC", **given)
    assert caught.value.field == field


def test_the_trend_covers_the_months_up_to_the_period() -> None:
    labels = [w.label for w in trailing_months(MARCH, 4)]
    assert labels == ["2025-12", "2026-01", "2026-02", "2026-03"]


# --------------------------------------------------------------------------- the store


def test_the_stores_tables_have_the_rows_columns() -> None:
    assert table_columns("lifecycle") == LIFECYCLE_COLUMNS
    assert table_columns("decisions") == DECISION_COLUMNS
    assert table_columns("standards") == STANDARD_COLUMNS


def test_a_record_stored_twice_counts_once_and_positions_only_move_forward() -> None:
    h = History()
    batch = received([b.opened("h1", *SW, at=at(0)), b.submitted("h1", *SW, at=at(0))])
    h.recorder.record(batch)
    h.recorder.record(batch)  # redelivered (routing is at-least-once)
    assert h.store.counts()["decisions"] == 1 and h.store.counts()["lifecycle"] == 1
    assert h.store.positions() == {("decisions", 0): batch[-1].offset + 1}
    assert h.report().items[0].deliveries == 1


def test_a_failed_write_stores_neither_rows_nor_positions() -> None:
    h = History()
    h.add(b.opened("h1", *SW, at=at(0)))
    before = (h.store.counts(), h.store.positions())
    good = b.opened("h2", *SW, at=at(1))
    from metrics.domain.history import decision_row

    row = decision_row(good)
    assert row is not None
    broken = row.__class__(**{**{c: getattr(row, c) for c in DECISION_COLUMNS}, "case_id": None})
    with pytest.raises(Exception, match="NOT NULL"):
        h.store.write([decision_row(b.opened("h3", *SW, at=at(2))), broken], {("decisions", 0): 99})  # type: ignore[list-item]
    assert (h.store.counts(), h.store.positions()) == before


def test_unreadable_records_are_skipped_and_counted_but_their_positions_advance() -> None:
    h = History()
    bad = Received("decisions", 1, 41, 0, b"h", b"not json", ())
    h.recorder.record([bad, *received([b.opened("h1", *SW, at=at(0))])])
    assert ("decisions", "invalid", 1) in h.counted
    assert h.store.positions()[("decisions", 1)] == 42


def test_the_store_file_resumes_where_it_stopped(tmp_path: Any) -> None:
    path = str(tmp_path / "h.duckdb")
    first = History(HistoryStore(path))
    first.add(b.opened("h1", *SW, at=at(0)))
    positions = first.store.positions()
    first.store.close()
    again = History(HistoryStore(path))
    assert again.recorder.resume() == positions
    assert again.report().items[0].deliveries == 1


# --------------------------------------------------------------------------- figures


def test_a_retracted_breach_is_no_breach_and_the_retraction_is_counted() -> None:
    h = History()
    h.add(
        b.opened("h1", *SW, at=at(0)),
        response("missed", "h1", SW, at(60)),
        response("retracted", "h1", SW, at(70), retracted="missed"),
        response("met", "h1", SW, at(30)),
        b.opened("h2", *SW, at=at(0)),
        response("met", "h2", SW, at(20)),
        response("retracted", "h2", SW, at(90), retracted="met"),
        response("missed", "h2", SW, at(60)),
    )
    (m,) = h.report().items[0].milestones
    assert (m.count, m.met, m.breaches, m.retractions) == (2, 1, 1, 2)
    assert m.on_time_ratio == 0.5 and m.objective == 0.9 and m.meets_objective is False


def test_a_clock_counts_in_the_month_its_outcome_happened() -> None:
    h = History()
    end_of_march = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    h.add(
        b.opened("h1", *SW, at=end_of_march - timedelta(hours=2)),
        response("missed", "h1", SW, end_of_march, deadline=end_of_march),  # breached in March
        b.opened("h2", *SW, at=end_of_march),
        response("met", "h2", SW, end_of_march + timedelta(hours=1)),  # met in April
    )
    (march,) = h.report().items[0].milestones
    assert (march.count, march.breaches) == (1, 1)
    (april,) = h.report(window=month_window(2026, 4, "UTC")).items[0].milestones
    assert (april.count, april.met) == (1, 1)


def test_durations_are_quantiles_of_the_stopped_clocks_in_business_and_wall_time() -> None:
    h = History()
    for i in range(1, 11):
        hid = f"h{i}"
        h.add(b.opened(hid, *SW, at=at(0)))
        for kind in ("met", "stopped"):
            h.add(response(kind, hid, SW, at(i), elapsed_business=60.0 * i, elapsed_wall=120.0 * i))
    (m,) = h.report(milestone=ClockName.RESPONSE).items[0].milestones
    assert m.timed == 10
    assert m.business_seconds.p50 == pytest.approx(330.0)
    assert m.business_seconds.p90 == pytest.approx(546.0)
    assert m.wall_seconds.p95 == pytest.approx(1146.0)
    assert h.report(milestone=ClockName.RESOLUTION).items[0].milestones == []


def test_rework_and_satisfaction_are_per_pair_with_reasons_and_latest_comments() -> None:
    h = History()
    for i in range(4):
        h.add(b.opened(f"h{i}", *SW, at=at(i)), b.submitted(f"h{i}", *SW, at=at(i)))
    h.add(
        rejected("h0", "missing details", at(10)),
        rejected("h1", "missing details", at(11)),
        rejected("h2", "wrong address", at(12)),
        rated("h0", 5, "spot on", at(20)),
        rated("h1", 1, "incomplete twice", at(21)),
        rated("h2", 4, None, at(22)),
    )
    item = h.report().items[0]
    assert item.rework.count == 3 and item.rework.rate == 0.75
    assert [(r.reason, r.count) for r in item.rework.reasons] == [
        ("missing details", 2),
        ("wrong address", 1),
    ]
    s = item.satisfaction
    assert (s.count, s.mean) == (3, pytest.approx(10 / 3))
    assert s.distribution == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 1}
    assert [(c.handoff_id, c.comment) for c in s.comments] == [
        ("h1", "incomplete twice"),
        ("h0", "spot on"),
    ]
    customers = h.report(Grouping.CUSTOMERS).items[0]
    assert customers.group == {"to": "warehouse"} and customers.rework.count == 3


def test_groups_are_paged_in_key_order_and_late_handoffs_link_to_sla() -> None:
    h = History()
    for i, pair in enumerate(PAIRS):
        h.add(b.opened(f"h{i}", *pair, at=at(i)), response("missed", f"h{i}", pair, at(60 + i)))
    first = h.queries.report(Grouping.PAIRS, MARCH, ReportFilter(), limit=2)
    assert [i.group for i in first.items] == [
        {"from": "hr", "to": "payroll"},
        {"from": "sales", "to": "billing"},
    ]
    assert (first.page.total, first.page.next_offset) == (3, 2)
    rest = h.queries.report(Grouping.PAIRS, MARCH, ReportFilter(), limit=2, offset=2)
    assert [i.group for i in rest.items] == [{"from": "sales", "to": "warehouse"}]
    assert rest.page.next_offset is None
    assert rest.items[0].late[0].status_url == "http://sla:8003/v1/handoffs/h0"
    late = h.queries.late(MARCH, ReportFilter(process="sales"), limit=1, offset=0)
    assert [x.handoff_id for x in late.items] == ["h2"]  # the latest deadline first
    assert late.page.total == 2


def test_routes_are_reported_per_standard_version() -> None:
    h = History()
    v1 = b.opened("h1", *SW, at=at(0))
    v2 = with_data(b.opened("h2", *SW, at=at(1)), {**v1.data, "standard_version": 2})
    h.add(v1, v2)
    groups = [i.group for i in h.report(Grouping.ROUTES).items]
    assert groups == [
        {"route_id": "sales-to-warehouse", "standard_version": 1},
        {"route_id": "sales-to-warehouse", "standard_version": 2},
    ]


def test_standard_rows_keep_each_version_once() -> None:
    h = History()
    h.recorder.on_process_map(PROCESS_MAP)
    assert h.store.counts()["standards"] == len(standard_rows(PROCESS_MAP)) == 3


# --------------------------------------------------------------------------- the API


def app_with(h_keys: list[ApiKey] | None = None) -> Any:
    settings = Settings(
        kafka=KafkaSettings(topic_prefix="unit."),
        api_keys=h_keys or b.ADMIN_KEYS,
        history_path=":memory:",
        sla_url="http://sla:8003",
    )
    app = create_app(settings, FakeClock(T + timedelta(days=2)))
    app.state.service.on_process_map(b"current", b.map_bytes(PROCESS_MAP))
    return app


def client_of(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://metrics",
        headers=b.AUTH if headers is None else headers,
    )


def feed(app: Any, *envelopes: Envelope) -> None:
    HistoryRecorder(app.state.store, lambda *_: None).record(received(envelopes))


async def test_every_report_route_needs_a_key_with_the_read_scope() -> None:
    writer = ApiKey(name="erp", key="writer-key-0123456789", scopes=["events:write"])
    app = app_with([*b.ADMIN_KEYS, writer])
    paths = [
        "/v1/reports/pairs",
        "/v1/reports/late",
        "/v1/reports/review?process=sales",
        *(f"/v1/exports/events.{kind}" for kind in ("csv", "xes", "ocel.json")),
    ]
    async with client_of(app, {}) as anonymous:
        for path in paths:
            assert (await anonymous.get(path)).status_code == 401, path
    async with client_of(app, {"Authorization": "Bearer writer-key-0123456789"}) as client:
        for path in paths:
            answer = await client.get(path)
            assert answer.status_code == 403, path
            assert answer.headers["content-type"] == "application/problem+json"


async def test_bad_report_parameters_are_a_422_naming_the_field() -> None:
    async with client_of(app_with()) as client:
        for query, field in [
            ("month=2026-13", "month"),
            ("month=2026-03&days=2", "days"),
            ("tz=Mars/Olympus", "tz"),
            ("limit=0", "limit"),
            ("milestone=lunch", "milestone"),
        ]:
            answer = await client.get(f"/v1/reports/pairs?{query}")
            assert answer.status_code == 422, query
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["errors"][0]["field"] == field, answer.json()
        assert (await client.get("/v1/reports/everything")).status_code == 422
        missing = await client.get("/v1/reports/review?process=nobody&month=2026-03")
        assert missing.status_code == 404


async def test_reports_answer_json_or_csv_by_accept_header() -> None:
    app = app_with()
    feed(app, b.opened("h1", *SW, at=at(0)), response("missed", "h1", SW, at(60)))
    async with client_of(app) as client:
        as_json = (await client.get("/v1/reports/suppliers?month=2026-03")).json()
        assert as_json["items"][0]["group"] == {"from": "sales"}
        assert as_json["items"][0]["late"][0]["from"] == "sales"
        csv = await client.get(
            "/v1/reports/suppliers?month=2026-03", headers={"Accept": "text/csv"}
        )
        assert csv.headers["content-type"] == "text/csv; charset=utf-8"
        header, row = csv.text.splitlines()
        assert header.startswith("from,milestone,count,met,breaches,retractions,on_time_ratio")
        assert row.startswith("sales,response,1,0,1,0,0,0.9,false")
        late = await client.get("/v1/reports/late?month=2026-03", headers={"Accept": "text/csv"})
        assert late.text.splitlines()[1].endswith("http://sla:8003/v1/handoffs/h1")


async def test_the_review_page_is_html_with_inline_svg_and_print_css() -> None:
    app = app_with()
    feed(app, b.opened("h1", *SW, at=at(0)), response("met", "h1", SW, at(10)))
    async with client_of(app) as client:
        page = await client.get("/v1/reports/review?process=warehouse&month=2026-03")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.count("<svg") >= 4 and "@media print" in html and "<script" not in html
    assert 'data-figure="customer.response.on_time_ratio" data-value="1.0"' in html


async def test_a_report_asked_while_the_store_is_closed_is_a_503_to_retry() -> None:
    app = app_with()
    app.state.store.close()
    async with client_of(app) as client:
        answer = await client.get("/v1/reports/pairs")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    app.state.store.open()
    async with client_of(app) as client:
        assert (await client.get("/v1/reports/pairs")).status_code == 200


async def test_a_shard_other_than_0_keeps_no_store_and_names_shard_0_for_reports(
    tmp_path: Path,
) -> None:
    settings = Settings(
        kafka=KafkaSettings(topic_prefix="unit."),
        api_keys=b.ADMIN_KEYS,
        history_path=str(tmp_path / "history.duckdb"),
        shards=2,
        shard=1,
    )
    app = create_app(settings, FakeClock(T + timedelta(days=2)))
    assert app.state.store is None and app.state.kafka.history is None
    assert not (tmp_path / "history.duckdb").exists()
    async with client_of(app) as client:
        for path in ("/v1/reports/pairs", "/v1/exports/events.csv"):
            answer = await client.get(path)
            assert answer.status_code == 404, path
            assert "shard 0" in answer.json()["detail"]


def test_a_store_file_with_other_columns_is_refused_at_open_naming_the_remedy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    HistoryStore(str(path)).close()
    db = duckdb.connect(str(path))
    db.execute("ALTER TABLE lifecycle DROP COLUMN seq")
    db.close()
    with pytest.raises(RuntimeError, match=r"table lifecycle has columns .* move the file away"):
        HistoryStore(str(path))
