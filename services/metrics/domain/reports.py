"""Reports over the handoff history: windows, groupings, the figures and their definitions.

Pure: the store hands over aggregated rows, this module turns them into reports. Definitions
(documented in the README for quality managers):

- A clock's **outcome** is its net outcome per cycle: met and missed decisions minus the
  retractions of each, so a breach withdrawn by a late event is not a breach. A clock counts in
  the window holding the instant its outcome happened: the milestone for `met`, the deadline
  for `missed` (when the breach occurred, as Prometheus counts it).
- **On time** = met / (met + breaches), compared with the standard's objective (the strictest
  objective among the route versions in the group).
- **Durations** (p50/p90/p95, business and wall time) are those of clocks stopped at their
  milestone, in time or late; a clock still running has no duration yet.
- **Retractions** = outcomes withdrawn for the window's clocks; **breaches** are net of them.
- **Deliveries** = cycles opened in the window (a resubmission after rework opens again);
  **rework rate** = rejections in the window / deliveries in the window.
- **Satisfaction** = the `rated` events of the window: count, mean, the 1..5 distribution and
  the latest comments.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from shared.contracts import ClockName

MAX_DAYS = 3660
MAX_PAGE = 1000
RATINGS = (1, 2, 3, 4, 5)


class InvalidReportQuery(ValueError):
    """A report parameter is unusable: `field` names it, the message says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) in UTC, with the label and time zone it was asked in."""

    start: datetime
    end: datetime
    label: str
    timezone: str


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def zone(name: str, field: str = "tz") -> ZoneInfo:
    """An IANA time zone, or InvalidReportQuery naming `field`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidReportQuery(field, f"unknown IANA time zone {name!r}") from None


def parse_month(text: str, field: str = "month") -> tuple[int, int]:
    """'2026-11' -> (2026, 11)."""
    match = _MONTH.match(text.strip())
    if match is None:
        raise InvalidReportQuery(field, f"expected a calendar month like 2026-11, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 1990 <= year <= 2199:
        raise InvalidReportQuery(field, f"no such month {text!r}")
    return year, month


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_window(year: int, month: int, tz_name: str) -> Window:
    """The calendar month in the time zone `tz_name`."""
    tz = zone(tz_name)
    end_year, end_month = _next_month(year, month)
    return Window(
        _local_midnight(date(year, month, 1), tz),
        _local_midnight(date(end_year, end_month, 1), tz),
        f"{year:04d}-{month:02d}",
        tz_name,
    )


def _instant(text: str, field: str, tz: ZoneInfo) -> tuple[datetime, bool]:
    """A date ('2026-11-01', local midnight) or an ISO datetime (with or without offset; without
    one it is local time). The flag says whether it was a bare date."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            return _local_midnight(date.fromisoformat(raw), tz), True
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC), False
    except ValueError:
        raise InvalidReportQuery(
            field, f"expected a date (2026-11-01) or an ISO datetime, got {text!r}"
        ) from None
    except OverflowError:
        raise InvalidReportQuery(field, f"{text!r} is out of range") from None


def resolve_window(
    *,
    now: datetime,
    tz_name: str,
    month: str | None = None,
    start: str | None = None,
    end: str | None = None,
    days: int | None = None,
    default_days: int = 30,
) -> Window:
    """The window a request asks for: a calendar month, from/to, or the last N days (default
    the last `default_days`). Exactly one way: mixing them is an error naming the fields."""
    tz = zone(tz_name)
    given = [n for n, v in (("month", month), ("days", days)) if v is not None]
    if start is not None or end is not None:
        given.append("from/to")
    if len(given) > 1:
        raise InvalidReportQuery(given[1], f"give one of month, from/to or days, not {given}")
    if month is not None:
        return month_window(*parse_month(month), tz_name)
    if start is not None or end is not None:
        end_at = now if end is None else _instant(end, "to", tz)[0]
        if start is None:
            start_at = end_at - timedelta(days=default_days)
        else:
            start_at = _instant(start, "from", tz)[0]
        if end_at <= start_at:
            raise InvalidReportQuery("to", "must be after 'from'")
        if end_at - start_at > timedelta(days=MAX_DAYS):
            raise InvalidReportQuery("from", f"a window spans at most {MAX_DAYS} days")
        label = f"{start or start_at.isoformat()}..{end or 'now'}"
        return Window(start_at, end_at, label, tz_name)
    n = default_days if days is None else days
    if not 1 <= n <= MAX_DAYS:
        raise InvalidReportQuery("days", f"must be between 1 and {MAX_DAYS}")
    return Window(now - timedelta(days=n), now, f"last {n} days", tz_name)


def trailing_months(window: Window, count: int) -> list[Window]:
    """The `count` calendar months ending with the one `window` starts in (oldest first)."""
    tz = zone(window.timezone)
    local = window.start.astimezone(tz)
    year, month = local.year, local.month
    out = []
    for _ in range(count):
        out.append(month_window(year, month, window.timezone))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


# --------------------------------------------------------------------------- groupings


class Grouping(StrEnum):
    """What a report is per."""

    PAIRS = "pairs"
    """Per supplier -> internal customer pair."""
    SUPPLIERS = "suppliers"
    """Per process as supplier (what it handed to others)."""
    CUSTOMERS = "customers"
    """Per process as internal customer (what it received)."""
    ROUTES = "routes"
    """Per route and standard version."""


GROUP_COLUMNS: Mapping[Grouping, tuple[str, ...]] = {
    Grouping.PAIRS: ("from_process", "to_process"),
    Grouping.SUPPLIERS: ("from_process",),
    Grouping.CUSTOMERS: ("to_process",),
    Grouping.ROUTES: ("route_id", "standard_version"),
}
"""The store's columns each grouping groups by."""
GROUP_NAMES: Mapping[str, str] = {
    "from_process": "from",
    "to_process": "to",
    "route_id": "route_id",
    "standard_version": "standard_version",
}
"""How the group's columns are named in reports."""

GroupKey = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """Which handoffs a report covers (None = any)."""

    process: str | None = None
    """Either end of the handoff."""
    from_process: str | None = None
    to_process: str | None = None
    route_id: str | None = None
    priority: str | None = None
    milestone: ClockName | None = None

    def as_dict(self) -> dict[str, str]:
        """The filters that are set, as a report echoes them."""
        out = {
            "process": self.process,
            "from": self.from_process,
            "to": self.to_process,
            "route_id": self.route_id,
            "priority": self.priority,
            "milestone": self.milestone.value if self.milestone else None,
        }
        return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------- store aggregates


@dataclass(frozen=True, slots=True)
class ClockFigures:
    """Aggregates of one group's clocks of one milestone in a window (from the store)."""

    key: GroupKey
    milestone: str
    decided: int
    met: int
    breaches: int
    retractions: int
    objective: float | None
    business: tuple[float | None, float | None, float | None]
    wall: tuple[float | None, float | None, float | None]
    timed: int


@dataclass(slots=True)
class GroupFacts:
    """Everything the store found for one group in a window."""

    clocks: list[ClockFigures] = field(default_factory=list)
    deliveries: int = 0
    handoffs: int = 0
    rejections: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)
    ratings: dict[int, int] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    late: list[LateHandoff] = field(default_factory=list)


# --------------------------------------------------------------------------- report shapes


class Quantiles(BaseModel):
    """Percentiles of a duration, in seconds (null when no clock of the group stopped)."""

    p50: float | None
    p90: float | None
    p95: float | None


class MilestoneFigures(BaseModel):
    """One milestone's figures for a group."""

    milestone: str
    count: int = Field(description="clocks with an outcome in the window (net of retractions)")
    met: int
    breaches: int = Field(description="missed, net of retractions")
    retractions: int = Field(description="outcomes withdrawn because a late event changed them")
    on_time_ratio: float | None = Field(description="met / count; null when count is 0")
    objective: float | None = Field(description="the standard's objective (strictest)")
    meets_objective: bool | None
    business_seconds: Quantiles
    wall_seconds: Quantiles
    timed: int = Field(description="clocks stopped at their milestone (the durations' sample)")


class ReasonCount(BaseModel):
    reason: str
    count: int


class Rework(BaseModel):
    """Handoffs returned to the supplier as incomplete or inaccurate."""

    count: int = Field(description="rejections in the window")
    deliveries: int = Field(description="deliveries (cycles opened) in the window")
    rate: float | None = Field(description="count / deliveries; null without deliveries")
    reasons: list[ReasonCount] = Field(description="most frequent first")


class Comment(BaseModel):
    """A rating with its comment."""

    handoff_id: str
    case_id: str | None
    rating: int
    comment: str | None
    at: datetime
    actor: str | None


class Satisfaction(BaseModel):
    """The internal customer's ratings (1 poor .. 5 excellent) in the window."""

    count: int
    mean: float | None
    distribution: dict[str, int] = Field(description='"1".."5" -> number of ratings')
    comments: list[Comment] = Field(description="latest first (those with a comment)")


class LateHandoff(BaseModel):
    """A clock whose outcome is a breach, with where to see the handoff's status."""

    handoff_id: str
    case_id: str
    from_process: str = Field(serialization_alias="from")
    to_process: str = Field(serialization_alias="to")
    kind: str
    milestone: str
    priority: str
    cycle: int
    route_id: str
    standard_version: int
    deadline: datetime | None
    reached_at: datetime | None = Field(description="when the milestone came (null: not yet)")
    target_seconds: float | None
    business_seconds: float | None
    status_url: str = Field(description="the handoff's status on the sla service")


class WindowOut(BaseModel):
    start: datetime
    end: datetime
    label: str
    timezone: str


class Page(BaseModel):
    limit: int
    offset: int
    total: int
    next_offset: int | None


class StoreState(BaseModel):
    """How complete the report store is."""

    caught_up: bool = Field(description="the store had read the topics to their end at start")
    lag_records: int = Field(description="records on the topics the store has not read yet")


class ReportItem(BaseModel):
    """One group's figures."""

    group: dict[str, str | int]
    deliveries: int
    handoffs: int = Field(description="distinct handoffs delivered in the window")
    milestones: list[MilestoneFigures]
    rework: Rework
    satisfaction: Satisfaction
    late: list[LateHandoff] = Field(description="the latest breaches (deadline, newest first)")


class Report(BaseModel):
    """A report over a window, one item per group, paged."""

    report: Grouping
    window: WindowOut
    filters: dict[str, str]
    items: list[ReportItem]
    page: Page
    store: StoreState


class LateList(BaseModel):
    """The latest breaches over a window, paged."""

    window: WindowOut
    filters: dict[str, str]
    items: list[LateHandoff]
    page: Page
    store: StoreState


# --------------------------------------------------------------------------- assembly


def ratio(part: int, whole: int) -> float | None:
    """part / whole, None when whole is 0."""
    return part / whole if whole else None


def group_dict(grouping: Grouping, key: GroupKey) -> dict[str, str | int]:
    """A group key as reports name it: {"from": ..., "to": ...}."""
    return {GROUP_NAMES[c]: v for c, v in zip(GROUP_COLUMNS[grouping], key, strict=True)}


def milestone_figures(c: ClockFigures) -> MilestoneFigures:
    """One milestone's figures from its aggregates."""
    on_time = ratio(c.met, c.decided)
    meets = None if on_time is None or c.objective is None else on_time >= c.objective
    return MilestoneFigures(
        milestone=c.milestone,
        count=c.decided,
        met=c.met,
        breaches=c.breaches,
        retractions=c.retractions,
        on_time_ratio=on_time,
        objective=c.objective,
        meets_objective=meets,
        business_seconds=Quantiles(p50=c.business[0], p90=c.business[1], p95=c.business[2]),
        wall_seconds=Quantiles(p50=c.wall[0], p90=c.wall[1], p95=c.wall[2]),
        timed=c.timed,
    )


_MILESTONE_ORDER = {c.value: i for i, c in enumerate(ClockName)}


def report_item(grouping: Grouping, key: GroupKey, facts: GroupFacts) -> ReportItem:
    """One group's report item."""
    count = sum(facts.ratings.values())
    total = sum(r * n for r, n in facts.ratings.items())
    return ReportItem(
        group=group_dict(grouping, key),
        deliveries=facts.deliveries,
        handoffs=facts.handoffs,
        milestones=[
            milestone_figures(c)
            for c in sorted(facts.clocks, key=lambda c: _MILESTONE_ORDER.get(c.milestone, 9))
        ],
        rework=Rework(
            count=facts.rejections,
            deliveries=facts.deliveries,
            rate=ratio(facts.rejections, facts.deliveries),
            reasons=[ReasonCount(reason=r, count=n) for r, n in facts.reasons],
        ),
        satisfaction=Satisfaction(
            count=count,
            mean=total / count if count else None,
            distribution={str(r): facts.ratings.get(r, 0) for r in RATINGS},
            comments=facts.comments,
        ),
        late=facts.late,
    )


def page_of(keys: Sequence[GroupKey], limit: int, offset: int) -> tuple[list[GroupKey], Page]:
    """The keys of one page (sorted), and the page's description."""
    ordered = sorted(keys, key=lambda k: tuple("" if v is None else str(v) for v in k))
    chosen = ordered[offset : offset + limit]
    following = offset + limit
    return chosen, Page(
        limit=limit,
        offset=offset,
        total=len(ordered),
        next_offset=following if following < len(ordered) else None,
    )


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "milestone",
    "count",
    "met",
    "breaches",
    "retractions",
    "on_time_ratio",
    "objective",
    "meets_objective",
    "business_p50_seconds",
    "business_p90_seconds",
    "business_p95_seconds",
    "wall_p50_seconds",
    "wall_p90_seconds",
    "wall_p95_seconds",
    "deliveries",
    "handoffs",
    "rework_count",
    "rework_rate",
    "rework_top_reason",
    "satisfaction_count",
    "satisfaction_mean",
    *(f"ratings_{r}" for r in RATINGS),
    "late_shown",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def report_csv(report: Report) -> Iterator[list[str]]:
    """A report as CSV rows (header first): one row per group and milestone, a group without
    decided clocks on one row with an empty milestone."""
    group_columns = [GROUP_NAMES[c] for c in GROUP_COLUMNS[report.report]]
    yield [*group_columns, *CSV_COLUMNS]
    for item in report.items:
        group = [_cell(item.group.get(c)) for c in group_columns]
        tail = [
            item.deliveries,
            item.handoffs,
            item.rework.count,
            item.rework.rate,
            item.rework.reasons[0].reason if item.rework.reasons else None,
            item.satisfaction.count,
            item.satisfaction.mean,
            *(item.satisfaction.distribution[str(r)] for r in RATINGS),
            len(item.late),
        ]
        rows: list[list[object]] = [
            [
                m.milestone,
                m.count,
                m.met,
                m.breaches,
                m.retractions,
                m.on_time_ratio,
                m.objective,
                m.meets_objective,
                m.business_seconds.p50,
                m.business_seconds.p90,
                m.business_seconds.p95,
                m.wall_seconds.p50,
                m.wall_seconds.p90,
                m.wall_seconds.p95,
            ]
            for m in item.milestones
        ] or [[None] * 14]
        for row in rows:
            yield [*group, *(_cell(v) for v in [*row, *tail])]


LATE_CSV_COLUMNS = (
    "handoff_id",
    "case_id",
    "from",
    "to",
    "kind",
    "milestone",
    "priority",
    "cycle",
    "route_id",
    "standard_version",
    "deadline",
    "reached_at",
    "target_seconds",
    "business_seconds",
    "status_url",
)


def late_csv(late: LateList) -> Iterator[list[str]]:
    """The late handoffs as CSV rows (header first)."""
    yield list(LATE_CSV_COLUMNS)
    for h in late.items:
        yield [
            _cell(v)
            for v in (
                h.handoff_id,
                h.case_id,
                h.from_process,
                h.to_process,
                h.kind,
                h.milestone,
                h.priority,
                h.cycle,
                h.route_id,
                h.standard_version,
                h.deadline.isoformat() if h.deadline else None,
                h.reached_at.isoformat() if h.reached_at else None,
                h.target_seconds,
                h.business_seconds,
                h.status_url,
            )
        ]


# --------------------------------------------------------------------------- management review


@dataclass(frozen=True, slots=True)
class StandardInForce:
    """A route of the map in force that involves the reviewed process, with its owners."""

    route_id: str
    version: int
    from_process: str
    to_process: str
    kind: str
    objective: float
    targets: str
    calendar: str
    supplier_owner: str | None
    customer_owner: str | None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One month of the on-time trend: per milestone, (on-time ratio or None, count)."""

    label: str
    figures: Mapping[str, tuple[float | None, int]]


@dataclass(frozen=True, slots=True)
class ReviewData:
    """What a management review of one process over one period shows."""

    process: str
    name: str
    owner: str | None
    window: Window
    generated_at: datetime
    map_version: int | None
    as_supplier: ReportItem | None
    """What the process handed to its internal customers (their clocks, their ratings)."""
    as_customer: ReportItem | None
    """What the process received from its suppliers (its own clocks)."""
    pairs: list[ReportItem]
    """Every pair the process is part of, both directions."""
    trend: list[TrendPoint]
    """Months up to the period: the process's own clocks (as receiver), on time."""
    objectives: Mapping[str, float]
    """The strictest objective per milestone among the routes into the process."""
    suppliers: list[str]
    customers: list[str]
    standards: list[StandardInForce]
    late: list[LateHandoff]
