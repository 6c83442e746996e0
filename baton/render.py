"""The `baton` command's tables: each answer of the services as rich renderables. Pure (no
I/O): the command prints what these return."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from baton.client import Posted
from baton.importer import Imported
from intake.api.schemas import RejectionDetail, RejectionList, RejectionOut, Replayed
from routing.api.schemas import MapSummary, MapVersions, Reloaded, StandardPreview
from shared.contracts import ProcessMapV1, format_duration
from shared.problem import FieldError
from sla.api.schemas import CaseOut, ClosedList, HandoffList, HandoffOut

_SHOWN_EVENTS = 20
"""A post lists its accepted events up to this many (`--output json` gives them all)."""


def when(instant: datetime | None) -> str:
    """An instant in UTC, to the second ("-" for none)."""
    if instant is None:
        return "-"
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def seconds(value: float | None) -> str:
    """A duration in seconds as 1h30m, 45s, -5m ("-" for none)."""
    if value is None:
        return "-"
    sign, whole = ("-" if value < 0 else ""), round(abs(value))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return sign + "".join(parts)


def percent(ratio: float) -> str:
    """0.8125 -> 81%."""
    return f"{ratio * 100:.0f}%"


def yes(flag: bool) -> str:
    """A flag as yes/no."""
    return "yes" if flag else "no"


_WHOLE = frozenset(
    {"deadline", "failed at", "occurred at", "published", "started", "ended", "closed at"}
)
"""Columns of instants, never wrapped (the others fold when the terminal is narrow)."""


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A table of text cells."""
    out = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        out.add_column(column, overflow="fold", no_wrap=column in _WHOLE)
    for row in rows:
        out.add_row(*("-" if cell is None else str(cell) for cell in row))
    return out


def fields(title: str, pairs: Iterable[tuple[str, Any]]) -> Table:
    """Name/value lines under a title."""
    out = Table.grid(padding=(0, 2))
    out.title = title
    out.title_justify = "left"
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for name, value in pairs:
        out.add_row(name, "-" if value is None else str(value))
    return out


# --------------------------------------------------------------------------- intake


def posted(result: Posted) -> RenderableType:
    """What a post of events was answered."""
    head = Text(f"accepted {result.accepted} event(s) in {result.batches} batch(es)")
    shown = result.events[:_SHOWN_EVENTS]
    rows = [(e.handoff_id, e.type, e.event_id) for e in shown]
    parts: list[RenderableType] = [head, table(None, ("handoff", "type", "event id"), rows)]
    if len(result.events) > len(shown):
        parts.append(Text(f"... and {len(result.events) - len(shown)} more (--output json)"))
    return Group(*parts)


def rejections(result: RejectionList) -> RenderableType:
    """The rejections list."""
    rows = [
        (
            r.id,
            when(r.failed_at),
            r.service,
            r.reason_code,
            r.handoff_id,
            (r.event_type or "-").removeprefix("handoff."),
            r.source,
            when(r.replayed_at) if r.replayed_at else "no",
        )
        for r in result.items
    ]
    columns = ("id", "failed at", "service", "reason", "handoff", "event", "source", "replayed")
    shown = f"{len(result.items)} of {result.count} rejection(s), from {result.offset}"
    return Group(table(None, columns, rows), Text(shown))


def _rejection_fields(r: RejectionOut) -> list[tuple[str, Any]]:
    return [
        ("service", r.service),
        ("reason", f"{r.reason_code}: {r.reason}"),
        ("failed at", when(r.failed_at)),
        ("handoff", r.handoff_id),
        ("case", r.case_id),
        ("event", f"{r.event_type or '-'} {r.event_id or ''}".strip()),
        ("occurred at", r.occurred_at),
        ("source", r.source),
        ("replayable", yes(r.replayable)),
        ("replayed", f"{when(r.replayed_at)} by {r.replayed_by}" if r.replayed_at else "no"),
    ]


def rejection(result: RejectionDetail) -> RenderableType:
    """One rejection with the event as it was refused."""
    import orjson

    event = orjson.dumps(result.event, option=orjson.OPT_INDENT_2).decode()
    return Group(fields(f"Rejection {result.id}", _rejection_fields(result)), Text(event))


def replayed(result: Replayed) -> RenderableType:
    """A replay's answer."""
    r = result.rejection
    return Text(f"replayed {r.id}: {r.event_type} {r.event_id} on handoff {r.handoff_id}")


# --------------------------------------------------------------------------- sla


def status(result: HandoffOut) -> RenderableType:
    """One handoff: its clocks, cycles and history."""
    history = table(
        "History",
        ("occurred at", "event", "event id"),
        [(when(e.occurred_at), e.type, e.event_id) for e in result.history],
    )
    s = result.standard
    head = fields(
        f"Handoff {result.handoff_id}",
        [
            ("case", result.case_id),
            ("kind", result.kind),
            ("from → to", f"{result.from_process} → {result.to_process}"),
            ("priority", result.priority.value),
            ("state", result.state.value),
            ("standard", f"{s.route_id} v{s.version}, {s.calendar}, objective {s.objective:g}"),
            ("breached", f"{yes(result.breached)} (ever: {yes(result.ever_breached)})"),
            ("closed at", when(result.closed_at)),
            ("as of", when(result.as_of)),
        ],
    )
    clocks = table(
        "Clocks",
        ("clock", "cycle", "stage", "outcome", "target", "deadline", "remaining", "used"),
        [
            (
                c.clock.value,
                c.cycle,
                c.stage.value,
                c.outcome.value if c.outcome else "-",
                seconds(c.target_seconds),
                when(c.deadline),
                seconds(c.remaining_business_seconds),
                percent(c.used_ratio),
            )
            for c in result.clocks
        ],
    )
    parts: list[RenderableType] = [head, clocks]
    if len(result.cycles) > 1:
        rows = [
            (c.cycle, when(c.started_at), when(c.ended_at), c.ended_by, yes(c.breached))
            for c in result.cycles
        ]
        parts.append(table("Cycles", ("cycle", "started", "ended", "by", "breached"), rows))
    parts.append(history)
    return Group(*parts)


def handoff_list(result: HandoffList) -> RenderableType:
    """The open, at-risk or overdue list."""
    rows = [
        (
            h.handoff_id,
            h.case_id,
            f"{h.from_process} → {h.to_process}",
            h.priority.value,
            h.clock.value,
            when(h.deadline),
            percent(h.used_ratio),
            seconds(h.overdue_seconds) if h.overdue_seconds else "-",
        )
        for h in result.items
    ]
    columns = ("handoff", "case", "from → to", "prio", "clock", "deadline", "used", "late")
    more = " (more: raise --limit)" if result.truncated else ""
    return Group(table(None, columns, rows), Text(f"{result.count} {result.view}{more}"))


def closed_list(result: ClosedList) -> RenderableType:
    """A page of closed handoffs, latest first."""
    rows = [
        (
            h.handoff_id,
            h.case_id,
            f"{h.from_process} → {h.to_process}",
            h.priority.value,
            h.state.value,
            when(h.closed_at),
            h.outcome.value,
        )
        for h in result.items
    ]
    columns = ("handoff", "case", "from → to", "prio", "state", "closed at", "outcome")
    more = f"next page: --cursor {result.next}" if result.next else "last page"
    return Group(table(None, columns, rows), Text(f"{len(result.items)} closed; {more}"))


def case(result: CaseOut) -> RenderableType:
    """Who held a case how long, what was late."""
    head = fields(
        f"Case {result.case_id}",
        [
            ("path", " → ".join(result.path)),
            ("started", when(result.started_at)),
            ("ended", when(result.ended_at)),
            ("end to end", seconds(result.end_to_end_wall_seconds)),
            ("ping-pong", yes(result.ping_pong)),
        ],
    )
    teams = table(
        "Teams",
        ("team", "held (wall)", "held (business)", "share", "handoffs", "late"),
        [
            (
                t.team,
                seconds(t.held_wall_seconds),
                seconds(t.held_business_seconds),
                percent(t.share_of_wall_time),
                t.handoffs,
                t.late_handoffs,
            )
            for t in result.teams
        ],
    )
    handoffs = table(
        "Handoffs",
        ("handoff", "from", "to", "priority", "state", "breached"),
        [
            (
                h.handoff_id,
                h.from_process,
                h.to_process,
                h.priority.value,
                h.state.value,
                yes(h.breached),
            )
            for h in result.handoffs
        ],
    )
    parts: list[RenderableType] = [head, teams, handoffs]
    if result.late_handoffs:
        late = [(h.handoff_id, ", ".join(c.value for c in h.clocks)) for h in result.late_handoffs]
        parts.append(table("Late", ("handoff", "clocks"), late))
    return Group(*parts)


# --------------------------------------------------------------------------- routing


def problems(title: str, errors: Sequence[FieldError]) -> RenderableType:
    """A refusal's errors, field by field."""
    return table(title, ("field", "reason"), [(e.field, e.reason) for e in errors])


def _standards(title: str, items: Sequence[StandardPreview]) -> Table:
    rows = [(s.route_id, s.change.value, s.version, s.previous_version) for s in items]
    return table(title, ("route", "change", "version", "previous"), rows)


def map_summary(result: MapSummary) -> RenderableType:
    """A validated map, against the map in force."""
    compared = result.compared_with_version
    head = Text(
        f"valid: {result.calendars} calendars, {result.processes} processes, "
        f"{result.routes} routes; compared with version {compared if compared else '(none)'}"
    )
    parts: list[RenderableType] = [head, _standards("Standards", result.standards)]
    if result.removed_routes:
        parts.append(Text("removed routes: " + ", ".join(result.removed_routes)))
    return Group(*parts)


def reloaded(result: Reloaded) -> RenderableType:
    """A reload's answer."""
    c = result.changes
    what = "published" if result.published else "unchanged: nothing published"
    head = fields(
        f"Map version {result.version} in force ({what})",
        [
            ("source", result.source),
            ("revision", result.revision or "-"),
            ("author", result.author or "-"),
            (
                "routes",
                f"{c.new} new, {c.changed} changed, {c.unchanged} unchanged, {c.removed} removed",
            ),
        ],
    )
    parts: list[RenderableType] = [head]
    if result.standards:
        parts.append(_standards("New or changed standards", result.standards))
    return Group(*parts)


def process_map(result: ProcessMapV1) -> RenderableType:
    """The process map in force."""
    head = fields(
        f"Process map version {result.version}",
        [
            ("published", f"{when(result.published_at)} by {result.author or '-'}"),
            ("source", f"{result.source} {result.revision}".strip()),
            ("holidays data", result.holidays_version),
            ("calendars", ", ".join(c.id for c in result.calendars)),
        ],
    )
    processes = table(
        "Processes",
        ("id", "name", "calendar", "owner", "escalation"),
        [
            (
                p.id,
                p.name,
                p.calendar,
                p.owner.name if p.owner else "-",
                ", ".join(c.name for c in p.escalation) or "-",
            )
            for p in result.processes
        ],
    )
    rows = []
    for r in result.routes:
        targets = []
        for priority, t in sorted(r.standard.targets.items()):
            response = format_duration(t.response) if t.response else "-"
            resolution = format_duration(t.resolution) if t.resolution else "-"
            targets.append(f"{priority.value} {response}/{resolution}")
        when_ = ", ".join(f"{k}={v}" for k, v in r.when.items())
        rows.append(
            (
                r.id,
                r.from_process,
                r.kind,
                r.to_process,
                when_ or "-",
                r.standard.version,
                "  ".join(targets),
            )
        )
    routes = table(
        "Routes (targets: response/resolution)",
        ("id", "from", "kind", "to", "when", "v", "targets"),
        rows,
    )
    return Group(head, processes, routes)


def map_versions(result: MapVersions) -> RenderableType:
    """Every published version of the map, newest first."""
    rows = [
        (
            m.version,
            when(m.published_at),
            m.author or "-",
            m.revision or "-",
            f"{m.changes.new}/{m.changes.changed}/{m.changes.unchanged}/{m.changes.removed}",
            m.routes,
        )
        for m in result.versions
    ]
    columns = ("version", "published", "author", "revision", "new/chg/same/rm", "routes")
    return Group(table(None, columns, rows), Text(f"in force: {result.in_force or '-'}"))


def health(rows: Sequence[tuple[str, str, str, str]]) -> RenderableType:
    """Each service's readiness: (service, url, status, checks)."""
    return table(None, ("service", "url", "status", "checks"), rows)


def imported(result: Imported) -> RenderableType:
    """What an import of an event log did."""
    return fields(
        "Imported",
        [
            ("import", result.import_id),
            ("log events", result.log_events),
            ("handoffs", result.handoffs),
            ("events", result.events),
            (
                "batches",
                f"{result.batches} ({result.posted_batches} posted, "
                f"{result.skipped_batches} acknowledged before)",
            ),
            ("state", result.state),
        ],
    )
