"""What metrics' report API reads: reports, late handoffs, management reviews and the event log,
from the report store and the process map in force.

The API reads through here and never reaches into the consumer or the store's SQL itself.
Every method is synchronous and blocking (DuckDB): the API calls them on worker threads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from metrics.adapters.history import (
    EVENT_LOG_COLUMNS,
    HistoryStore,
    ReportSql,
    event_log_objects_sql,
    event_log_sql,
    key_text,
)
from metrics.domain.eventlog import LogEvent, LogObject
from metrics.domain.history import aware_utc, naive_utc, targets_text
from metrics.domain.reports import (
    ClockFigures,
    Comment,
    GroupFacts,
    Grouping,
    GroupKey,
    LateHandoff,
    LateList,
    Page,
    Report,
    ReportFilter,
    ReportItem,
    ReviewData,
    StandardInForce,
    StoreState,
    TrendPoint,
    Window,
    WindowOut,
    page_of,
    ratio,
    report_item,
    trailing_months,
)
from shared.contracts import ClockName, ProcessMapV1

MAX_REASONS = 10
TREND_MONTHS = 12


def _window_out(window: Window) -> WindowOut:
    return WindowOut(
        start=window.start, end=window.end, label=window.label, timezone=window.timezone
    )


def _quantiles(value: Any) -> tuple[float | None, float | None, float | None]:
    if value is None:
        return None, None, None
    p50, p90, p95 = value
    return p50, p90, p95


class ReportQueries:
    """Read access to the handoff history."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        state: Callable[[], StoreState],
        process_map: Callable[[], ProcessMapV1 | None],
        sla_url: str,
        clock_now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._state = state
        self._map = process_map
        self._sla_url = sla_url.rstrip("/")
        self._now = clock_now

    def status_url(self, handoff_id: str) -> str:
        """Where the sla service shows the handoff's status."""
        return f"{self._sla_url}/v1/handoffs/{quote(handoff_id, safe='')}"

    # ----------------------------------------------------------------------- reports

    def _facts(self, sql: ReportSql, start: datetime, end: datetime) -> dict[GroupKey, GroupFacts]:
        n = len(sql.columns)
        facts: dict[GroupKey, GroupFacts] = defaultdict(GroupFacts)
        store = self._store
        for row in store.query(*sql.clock_figures(start, end)):
            key = tuple(row[:n])
            decided, met, missed, retractions, objective, business, wall, timed = row[n + 1 :]
            facts[key].clocks.append(
                ClockFigures(
                    key=key,
                    milestone=row[n],
                    decided=int(decided),
                    met=int(met),
                    breaches=int(missed),
                    retractions=int(retractions or 0),
                    objective=objective,
                    business=_quantiles(business),
                    wall=_quantiles(wall),
                    timed=int(timed),
                )
            )
        for row in store.query(*sql.deliveries(start, end)):
            group = facts[tuple(row[:n])]
            group.deliveries, group.handoffs = int(row[n]), int(row[n + 1])
        reasons: dict[GroupKey, list[tuple[str, int]]] = defaultdict(list)
        for row in store.query(*sql.rework(start, end)):
            key = tuple(row[1 : 1 + n])
            reason, count = row[1 + n], int(row[2 + n])
            facts[key].rejections += count
            reasons[key].append((reason, count))
        for key, found in reasons.items():
            found.sort(key=lambda rc: (-rc[1], rc[0]))
            facts[key].reasons = found[:MAX_REASONS]
        for row in store.query(*sql.ratings(start, end)):
            key = tuple(row[1 : 1 + n])
            facts[key].ratings[int(row[1 + n])] = int(row[2 + n])
        return facts

    def _late_row(self, row: tuple[Any, ...]) -> LateHandoff:
        (
            _key,
            handoff_id,
            case_id,
            from_process,
            to_process,
            kind,
            clock,
            priority,
            cycle,
            route_id,
            version,
            deadline,
            reached_at,
            target,
            business,
            _at,
        ) = row[:16]
        return LateHandoff(
            handoff_id=handoff_id,
            case_id=case_id,
            from_process=from_process,
            to_process=to_process,
            kind=kind,
            milestone=clock,
            priority=priority,
            cycle=cycle,
            route_id=route_id,
            standard_version=version,
            deadline=aware_utc(deadline) if deadline is not None else None,
            reached_at=aware_utc(reached_at) if reached_at is not None else None,
            target_seconds=target,
            business_seconds=business,
            status_url=self.status_url(handoff_id),
        )

    def report(
        self,
        grouping: Grouping,
        window: Window,
        filters: ReportFilter,
        *,
        limit: int = 50,
        offset: int = 0,
        late_per_group: int = 5,
        comments_per_group: int = 5,
    ) -> Report:
        """A report per `grouping` over `window`: one page of groups, each with its latest
        breaches and comments."""
        # The store's state first: what it says was stored before the queries run, so a
        # report claiming "caught up" never shows less than that.
        state = self._state()
        start, end = naive_utc(window.start), naive_utc(window.end)
        sql = ReportSql(grouping, filters)
        facts = self._facts(sql, start, end)
        chosen, page = page_of(list(facts), limit, offset)
        by_text = {key_text(k): k for k in chosen}
        texts = list(by_text)
        if texts and comments_per_group > 0:
            n = len(sql.columns)
            for row in self._store.query(*sql.comments(start, end, texts, comments_per_group)):
                handoff_id, case_id, rating, comment, at, actor = row[1 + n : 7 + n]
                facts[by_text[row[0]]].comments.append(
                    Comment(
                        handoff_id=handoff_id,
                        case_id=case_id,
                        rating=rating,
                        comment=comment,
                        at=aware_utc(at),
                        actor=actor,
                    )
                )
        if texts and late_per_group > 0:
            for row in self._store.query(*sql.late(start, end, texts, late_per_group)):
                facts[by_text[row[0]]].late.append(self._late_row(row))
        return Report(
            report=grouping,
            window=_window_out(window),
            filters=filters.as_dict(),
            items=[report_item(grouping, key, facts[key]) for key in chosen],
            page=page,
            store=state,
        )

    def late(self, window: Window, filters: ReportFilter, *, limit: int, offset: int) -> LateList:
        """The breaches of a window, latest deadline first, one page."""
        state = self._state()  # before the queries, as in `report`
        start, end = naive_utc(window.start), naive_utc(window.end)
        sql = ReportSql(Grouping.PAIRS, filters)
        rows = self._store.query(*sql.late(start, end, None, None, limit, offset))
        total = int(self._store.query(*sql.late_count(start, end))[0][0])
        following = offset + limit
        return LateList(
            window=_window_out(window),
            filters=filters.as_dict(),
            items=[self._late_row(r) for r in rows],
            page=Page(
                limit=limit,
                offset=offset,
                total=total,
                next_offset=following if following < total else None,
            ),
            store=state,
        )

    # ----------------------------------------------------------------------- review

    def _one(self, grouping: Grouping, window: Window, filters: ReportFilter) -> ReportItem | None:
        items = self.report(grouping, window, filters, limit=1, late_per_group=0).items
        return items[0] if items else None

    def review(self, process: str, window: Window) -> ReviewData | None:
        """The management review of `process` over `window`; None if neither the map in force
        nor the history knows the process."""
        process_map = self._map()
        known = {p.id: p for p in process_map.processes} if process_map is not None else {}
        as_supplier = self._one(Grouping.SUPPLIERS, window, ReportFilter(from_process=process))
        as_customer = self._one(Grouping.CUSTOMERS, window, ReportFilter(to_process=process))
        pairs = self.report(
            Grouping.PAIRS, window, ReportFilter(process=process), limit=1000, late_per_group=0
        ).items
        if process not in known and as_supplier is None and as_customer is None and not pairs:
            return None
        months = trailing_months(window, TREND_MONTHS)
        buckets = [(m.label, naive_utc(m.start), naive_utc(m.end)) for m in months]
        sql = ReportSql(Grouping.CUSTOMERS, ReportFilter(to_process=process))
        found: dict[str, dict[str, tuple[float | None, int]]] = defaultdict(dict)
        for label, milestone, decided, met in self._store.query(*sql.clock_trend(buckets)):
            found[label][milestone] = (ratio(int(met), int(decided)), int(decided))
        trend = [TrendPoint(m.label, found.get(m.label, {})) for m in months]
        routes = process_map.routes if process_map is not None else ()
        owners = {pid: (p.owner.name if p.owner is not None else None) for pid, p in known.items()}
        standards = [
            StandardInForce(
                route_id=r.id,
                version=r.standard.version,
                from_process=r.from_process,
                to_process=r.to_process,
                kind=r.kind,
                objective=r.standard.objective,
                targets=targets_text(r.standard),
                calendar=r.standard.calendar.id,
                supplier_owner=owners.get(r.from_process),
                customer_owner=owners.get(r.to_process),
            )
            for r in routes
            if process in (r.from_process, r.to_process)
        ]
        objectives: dict[str, float] = {}
        for s in standards:
            if s.to_process == process:
                for milestone in (ClockName.RESPONSE.value, ClockName.RESOLUTION.value):
                    objectives[milestone] = max(s.objective, objectives.get(milestone, 0.0))
        suppliers = sorted(
            {s.from_process for s in standards if s.to_process == process}
            | {str(i.group["from"]) for i in pairs if i.group["to"] == process}
        )
        customers = sorted(
            {s.to_process for s in standards if s.from_process == process}
            | {str(i.group["to"]) for i in pairs if i.group["from"] == process}
        )
        late = self.late(window, ReportFilter(process=process), limit=20, offset=0).items
        info = known.get(process)
        return ReviewData(
            process=process,
            name=info.name if info is not None else process,
            owner=owners.get(process),
            window=window,
            generated_at=self._now(),
            map_version=process_map.version if process_map is not None else None,
            as_supplier=as_supplier,
            as_customer=as_customer,
            pairs=pairs,
            trend=trend,
            objectives=objectives,
            suppliers=suppliers,
            customers=customers,
            standards=standards,
            late=late,
        )

    # ----------------------------------------------------------------------- event log

    def event_log(
        self, window: Window, *, process: str | None, case_id: str | None, chunk: int = 2000
    ) -> Iterator[list[LogEvent]]:
        """The lifecycle events of the window (of one process or case), by case and time, in
        chunks: the result is never held whole."""
        sql, params = event_log_sql(
            naive_utc(window.start), naive_utc(window.end), process, case_id
        )
        for rows in self._store.stream(sql, params, chunk):
            yield [_log_event(dict(zip(EVENT_LOG_COLUMNS, row, strict=True))) for row in rows]

    def event_log_objects(
        self, window: Window, *, process: str | None, case_id: str | None, chunk: int = 2000
    ) -> Iterator[list[LogObject]]:
        """The handoffs of the same log, once each, in chunks."""
        start, end = naive_utc(window.start), naive_utc(window.end)
        sql, params = event_log_objects_sql(start, end, process, case_id)
        for rows in self._store.stream(sql, params, chunk):
            yield [LogObject(*row) for row in rows]


def _log_event(row: dict[str, Any]) -> LogEvent:
    return LogEvent(
        case_id=row["case_id"],
        handoff_id=row["handoff_id"],
        event_id=row["event_id"],
        type=row["type"],
        at=aware_utc(row["occurred_at"]),
        from_process=row["from_process"],
        to_process=row["to_process"],
        kind=row["kind"],
        priority=row["priority"],
        route_id=row["route_id"],
        standard_version=row["standard_version"],
        actor=row["actor"],
        reason=row["reason"],
        note=row["note"],
        rating=row["rating"],
        comment=row["comment"],
    )
