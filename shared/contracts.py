"""Data contracts every service shares: ids, priorities, durations, the process map shape.

Only shapes and their own validation live here (a timezone must exist, an interval must be
"HH:MM-HH:MM" with start < end). Business rules -- route resolution, calendar arithmetic,
clock semantics -- live in the service that owns them.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, description="lower-case id: a-z, 0-9, '-'")]
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def as_slug(text: str) -> str:
    """An id made from a name the way Baton's tools do it ("V5 3rd" -> "v5-3rd"): lower case,
    every run of other characters one '-', cut to 63; may be empty."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:63].rstrip("-")


ANY_PROCESS = "*"
"""A route's `from` that stands for every process (a default route to its receiver)."""
RouteOrigin = Annotated[
    str,
    Field(
        pattern=r"^(\*|[a-z0-9][a-z0-9-]{0,62})$",
        description="a process id, a group id (ProcessMapV1.groups) or '*' for any process",
    ),
]
Identifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@#+=-]*$",
        description="client-given id: letters, digits and ._:/@#+=- (max 200)",
    ),
]


class Priority(StrEnum):
    """The closed set of priorities (ITIL: critical, high, medium, low)."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class ClockName(StrEnum):
    """The three clocks a handoff can have (SPEC section 3)."""

    DELIVERY = "delivery"
    RESPONSE = "response"
    RESOLUTION = "resolution"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value  # already normalised (the common case on the hot paths)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a UTC offset, e.g. 2026-11-21T09:30:00+01:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {value.isoformat()} is out of range") from None


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""An aware timestamp, normalised to UTC. Naive timestamps are rejected: ambiguous."""


def _iso_text(value: object) -> object:
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("give an ISO 8601 timestamp with a UTC offset, e.g. 2026-11-21T00:00Z")
    return value


QueryInstant = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc)]
"""A timestamp in a query string: ISO 8601 text with an offset, normalised to UTC (a bare
number, which pydantic would read as Unix seconds, is refused like the schema says)."""

EARLIEST_EVENT = datetime(1990, 1, 2, tzinfo=UTC)
LATEST_EVENT = datetime(2100, 1, 1, tzinfo=UTC)
"""The instants a lifecycle event (occurred_at, due_at) may name. Business calendars are
computed for the years 1990..2199; events end well before that, so every deadline a standard
can set from them stays computable."""


def _supported(value: datetime) -> datetime:
    if not EARLIEST_EVENT <= value < LATEST_EVENT:
        raise ValueError(
            f"{value.isoformat()} is outside the supported range "
            f"{EARLIEST_EVENT.date().isoformat()} .. {LATEST_EVENT.date().isoformat()}"
        )
    return value


EventTime = Annotated[datetime, AfterValidator(_utc), AfterValidator(_supported)]
"""An event's own time (occurred_at, due_at): aware, UTC, within the calendars' range."""

_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
MAX_DURATION = timedelta(hours=87840)
"""Ten years: far beyond any target, far below where arithmetic on instants overflows."""
_TOO_LONG = f"not a usable duration: at most {int(MAX_DURATION.total_seconds()) // 3600}h"


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse a business duration: "90m", "4h", "1h30m", "45s" (or a timedelta).

    A bare number is refused: `response: 30` could mean minutes as easily as seconds. Days and
    weeks are refused on purpose: on a business calendar "1d" could mean 24 working hours or
    one working day, and that ambiguity is how SLA tools end up with wrong deadlines.
    """
    if isinstance(text, str):
        return _parse_duration_text(text)  # a map repeats the same few texts thousands of times
    if isinstance(text, timedelta):
        value = text
    elif isinstance(text, int | float) and not isinstance(text, bool):
        shown = f"{text:g}" if isinstance(text, float) and math.isfinite(text) else str(text)
        raise ValueError(
            f"a duration needs its unit: write e.g. '{shown}m' or '{shown}s', not a bare {shown}"
        )
    else:
        raise ValueError(f"invalid duration {text!r}")
    return _in_range(value)


@functools.lru_cache(maxsize=4096)
def _parse_duration_text(text: str) -> timedelta:
    raw = text.strip().lower().replace(" ", "")
    match = _DURATION_RE.match(raw)
    if not raw or match is None or not any(match.groups()):
        hint = ""
        if raw[-1:] in {"d", "w"}:
            hint = " (days and weeks are ambiguous on a business calendar: write hours, e.g. '8h')"
        raise ValueError(f"invalid duration {text!r}: use h/m/s like '4h', '90m', '1h30m'{hint}")
    h, m, s = (int(g) if g else 0 for g in match.groups())
    if h * 3600 + m * 60 + s > MAX_DURATION.total_seconds():
        raise ValueError(_TOO_LONG)
    return _in_range(timedelta(hours=h, minutes=m, seconds=s))


def _in_range(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("duration must not be negative")
    if value > MAX_DURATION:
        raise ValueError(_TOO_LONG)
    return value


def format_duration(value: timedelta) -> str:
    """Render a duration the way parse_duration reads it ("1h30m")."""
    total = int(value.total_seconds())
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")
    return out or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class Frozen(BaseModel):
    """Base of every contract: immutable, unknown fields refused, aliases accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- calendars

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _interval_order(interval: tuple[time, time | None]) -> tuple[time, bool, time]:
    """Sort key of a parsed interval: by start, then end, "24:00" (None) after any time."""
    start, end = interval
    return start, end is None, end or time.min


def parse_interval(text: str) -> tuple[time, time | None]:
    """Parse "08:30-12:00"; an end of "24:00" is returned as None (end of day)."""
    match = _INTERVAL_RE.match(text.strip())
    if match is None:
        raise ValueError(f"invalid working interval {text!r}: expected 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"invalid working interval {text!r}: time out of range")
    start = time(h1, m1)
    end = None if h2 == 24 else time(h2, m2)
    if end is not None and end <= start:
        raise ValueError(f"invalid working interval {text!r}: end must be after start")
    return start, end


def _expand_weekdays(key: str) -> list[str]:
    key = key.strip().lower()
    if key in WEEKDAYS:
        return [key]
    if "-" in key:
        first, last = key.split("-", 1)
        if first in WEEKDAYS and last in WEEKDAYS:
            i, j = WEEKDAYS.index(first), WEEKDAYS.index(last)
            if i <= j:
                return list(WEEKDAYS[i : j + 1])
    raise ValueError(f"invalid weekday {key!r}: use mon..sun or a range like 'mon-fri'")


@functools.cache
def _zones() -> frozenset[str]:
    # available_timezones() walks the tz database on disk: once per process, not per event.
    return frozenset(available_timezones())


@functools.cache
def holidays_data_version() -> str:
    """The installed python-holidays version: the public-holiday data in force."""
    from importlib.metadata import version

    return version("holidays")


@functools.cache
def _supported_countries() -> dict[str, list[str]]:
    import holidays

    supported: dict[str, list[str]] = holidays.list_supported_countries()
    return supported


class HolidaysV1(Frozen):
    """Days off: a country's public holidays (python-holidays) and explicit dates."""

    country: str | None = Field(None, description="ISO 3166-1 alpha-2 code, e.g. BE, DE, US")
    subdivision: str | None = Field(None, description="state/province code, e.g. BY for Bavaria")
    dates: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _known_country(self) -> HolidaysV1:
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError("holidays.subdivision needs holidays.country")
            return self
        supported = _supported_countries()
        if self.country not in supported:
            raise ValueError(f"holidays.country {self.country!r} is not a supported country code")
        if self.subdivision is not None and self.subdivision not in supported[self.country]:
            raise ValueError(
                f"holidays.subdivision {self.subdivision!r} is not a subdivision of {self.country}"
            )
        return self


_CALENDARS: dict[bytes, CalendarV1] = {}
_CALENDARS_KEPT = 1024


class CalendarV1(Frozen):
    """A business calendar: a timezone, working intervals per weekday, holidays; or 24x7."""

    id: Slug
    timezone: str = "UTC"
    always_open: bool = Field(False, description="24x7: every instant is business time")
    hours: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="weekday (mon..sun) or range (mon-fri) -> intervals 'HH:MM-HH:MM'",
    )
    holidays: HolidaysV1 = HolidaysV1()

    @model_validator(mode="wrap")
    @classmethod
    def _interned(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> CalendarV1:
        """One instance per distinct calendar: a map embeds its few calendars in each of its
        thousands of standards, and checking every copy (zone, holidays) would dominate
        reading it. Frozen, so sharing is safe; only valid calendars are kept."""
        if not isinstance(data, dict):
            checked: CalendarV1 = handler(data)
            return checked
        try:
            key = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            checked = handler(data)
            return checked
        found = _CALENDARS.get(key)
        if found is None:
            found = handler(data)
            if len(_CALENDARS) >= _CALENDARS_KEPT:
                _CALENDARS.clear()
            _CALENDARS[key] = found
        return found

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        if value not in _zones() and value != "UTC":
            raise ValueError(f"unknown IANA timezone {value!r}")
        return value

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        seen: dict[str, str] = {}
        for key, intervals in value.items():
            for day in _expand_weekdays(key):
                if day in seen:
                    raise ValueError(f"weekday {day!r} given twice ({seen[day]!r} and {key!r})")
                seen[day] = key
            parsed = sorted((parse_interval(i) for i in intervals), key=_interval_order)
            for (_, end), (start, _) in itertools.pairwise(parsed):
                if end is None or start < end:
                    raise ValueError(f"working intervals overlap on {key!r}: {list(intervals)}")
        return value

    @model_validator(mode="after")
    def _some_time(self) -> CalendarV1:
        if not self.always_open and not any(self.hours.values()):
            raise ValueError(f"calendar {self.id!r} has no working hours and is not always_open")
        return self

    def weekly_intervals(self) -> dict[int, list[tuple[time, time | None]]]:
        """Working intervals per weekday number (0 = Monday), sorted."""
        out: dict[int, list[tuple[time, time | None]]] = {i: [] for i in range(7)}
        for key, intervals in self.hours.items():
            for day in _expand_weekdays(key):
                out[WEEKDAYS.index(day)] = sorted(
                    (parse_interval(i) for i in intervals), key=_interval_order
                )
        return out


# --------------------------------------------------------------------------- standards


class ClockTargetsV1(Frozen):
    """Business-time targets of one priority."""

    response: Duration | None = None
    resolution: Duration | None = None


class ServiceStandardV1(Frozen):
    """The agreed service standard (OLA) of one route, as pinned to a handoff at submission."""

    route_id: Slug
    version: int = Field(ge=1)
    calendar: CalendarV1
    targets: dict[Priority, ClockTargetsV1]
    delivery: Duration | None = Field(
        None, description="supplier's target from 'expected' to 'submitted' when no due_at"
    )
    warnings: tuple[int, ...] = Field((50, 75), description="warning thresholds, % of target")
    objective: float = Field(0.95, gt=0, lt=1, description="share on time, e.g. 0.95")

    @field_validator("warnings")
    @classmethod
    def _warnings_in_range(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 < w < 100 for w in value):
            raise ValueError("warning thresholds are percentages between 1 and 99")
        return tuple(sorted(set(value)))

    def target(self, priority: Priority, clock: ClockName) -> timedelta | None:
        """The business-time target of a clock at a priority, None when the route sets none."""
        if clock is ClockName.DELIVERY:
            return self.delivery
        targets = self.targets.get(priority)
        if targets is None:
            return None
        return targets.response if clock is ClockName.RESPONSE else targets.resolution


class RouteV1(Frozen):
    """What routing attached to a handoff: its receiver and the standard that applies."""

    from_process: Slug = Field(alias="from")
    to_process: Slug = Field(alias="to")
    kind: Slug
    standard: ServiceStandardV1


def jsonable(model: BaseModel) -> dict[str, Any]:
    """The JSON form of a contract, by alias (so 'from'/'to', not 'from_process')."""
    return model.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- the process map


WEBHOOK_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
WebhookUrl = Annotated[
    str,
    Field(
        max_length=2000,
        pattern=WEBHOOK_PATTERN,
        description="an http(s) URL that takes Baton's notifications (POST, JSON, signed)",
    ),
]


class ContactV1(Frozen):
    """Someone to tell: an owner or an escalation contact."""

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=200)
    chat: str | None = Field(None, max_length=200, description="e.g. a Slack/Teams channel")
    webhook: WebhookUrl | None = Field(
        None, description="where this contact's notifications are posted (else the process's)"
    )


_ESCALATION_AT = re.compile(r"^(?:(\d{1,2})%|breach(?:\+(.+))?|rejected)$")
_NOTIFY_LEVEL = re.compile(r"^(?:owner|escalation-([1-9]\d?))$")


class EscalationStepV1(Frozen):
    """One step of an escalation: at which moment of a handoff, whom of the team to tell.

    `at`: a warning threshold (`"75%"`: the warning decision of that threshold), `breach`
    (the missed decision), `breach+1h` (that long after the deadline, in business time on the
    clock's calendar, while the target is still missed) or `rejected` (a delivery of this
    team was returned to it). `notify`: `owner` or `escalation-N` (the N-th escalation
    contact). `urgent`: sent at once, day and night; otherwise it waits for the team's service
    hours (default: urgent from the breach on).
    """

    at: str = Field(max_length=40, description="'75%', 'breach', 'breach+1h' or 'rejected'")
    notify: str = Field("owner", max_length=20, description="'owner' or 'escalation-N'")
    urgent: bool | None = Field(None, description="default: true from the breach on")

    @field_validator("at")
    @classmethod
    def _known_moment(cls, value: str) -> str:
        match = _ESCALATION_AT.match(value.strip().replace(" ", ""))
        if match is None:
            raise ValueError(
                f"invalid moment {value!r}: use a warning threshold like '75%', 'breach', "
                "'breach+1h' (business time after the deadline) or 'rejected'"
            )
        percent, after = match.groups()
        if percent is not None and not 0 < int(percent) < 100:
            raise ValueError(f"{value!r}: a warning threshold is between 1% and 99%")
        if after is not None:
            delay = parse_duration(after)
            if not timedelta(0) < delay <= MAX_ESCALATION_DELAY:
                raise ValueError(
                    f"{value!r}: the delay after the breach must be longer than 0s and at "
                    f"most {format_duration(MAX_ESCALATION_DELAY)}"
                )
        return value.strip().replace(" ", "")

    @field_validator("notify")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if _NOTIFY_LEVEL.match(value) is None:
            raise ValueError(f"invalid level {value!r}: use 'owner' or 'escalation-1', ...")
        return value

    @property
    def threshold(self) -> int | None:
        """The warning threshold this step fires on, None for the other moments."""
        match = _ESCALATION_AT.match(self.at)
        assert match is not None
        return int(match.group(1)) if match.group(1) is not None else None

    @property
    def after_breach(self) -> timedelta | None:
        """How long after the deadline (business time) the step fires; 0 at the breach, None
        for warnings and rejections."""
        match = _ESCALATION_AT.match(self.at)
        assert match is not None
        if not self.at.startswith("breach"):
            return None
        return parse_duration(match.group(2)) if match.group(2) else timedelta(0)

    @property
    def level(self) -> int:
        """0 for the owner, N for the N-th escalation contact."""
        match = _NOTIFY_LEVEL.match(self.notify)
        assert match is not None
        return int(match.group(1)) if match.group(1) else 0

    @property
    def is_urgent(self) -> bool:
        """Sent at once (breaches and later, unless the map says otherwise)."""
        return self.urgent if self.urgent is not None else self.after_breach is not None


MAX_ESCALATION_DELAY = timedelta(hours=80)
"""Two working weeks: the notification outbox keeps records 30 days, far beyond it."""


class NotifyV1(Frozen):
    """How a team hears about its late handoffs: the webhook its contacts are reached at
    (unless a contact has its own), the name of its signing secret, and its escalation steps
    (None: Baton's defaults)."""

    webhook: WebhookUrl | None = Field(None, description="for contacts without their own")
    secret: Slug | None = Field(
        None, description="name of the signing secret in ROUTING_WEBHOOK_SECRETS (default: id)"
    )
    levels: tuple[EscalationStepV1, ...] | None = Field(
        None, description="who hears what, when; default 75% owner, breach escalation-1, ..."
    )


class ProcessV1(Frozen):
    """A team, department or process step."""

    id: Slug
    name: str = Field(min_length=1, max_length=200)
    calendar: Slug
    owner: ContactV1 | None = None
    escalation: tuple[ContactV1, ...] = ()
    notify: NotifyV1 | None = Field(None, description="notifications by webhook (optional)")


class AlertSeverity(StrEnum):
    """How urgent a fast burn of a route's error budget is."""

    PAGE = "page"
    """Notify at once, day and night (the receiving team's owner and escalation contacts)."""
    TICKET = "ticket"
    """Notify in the receiving team's service hours only."""


class BudgetWindow(StrEnum):
    """The window the objective is measured over (the error budget's period)."""

    ROLLING_30D = "30d"
    CALENDAR_MONTH = "month"
    """The calendar month so far, in UTC (Prometheus' time functions are UTC only)."""


class AlertingV1(Frozen):
    """How the generated Prometheus rules and Alertmanager routes treat a route (`make ops`).

    Optional in the map; the defaults page on a fast burn and measure over a rolling 30 days.
    Where several routes join the same supplier->customer pair, the strictest wins: page over
    ticket, the calendar month over 30 days.
    """

    severity: AlertSeverity = Field(
        AlertSeverity.PAGE,
        description="fast burn (14.4x, 6x): page (24x7) or ticket (service hours); "
        "a slow burn (3x, 1x) is always a ticket",
    )
    window: BudgetWindow = Field(
        BudgetWindow.ROLLING_30D, description="error-budget window: '30d' or 'month'"
    )


class NextStepV1(Frozen):
    """A step that follows a route: when the receiving team completes a handoff that took the
    route, routing opens the next handoff of the case, from that team to `to`, of `kind` --
    if `when` (attributes of the completed handoff) matches."""

    kind: Slug
    to_process: Slug = Field(alias="to")
    when: dict[str, str | int | float | bool] = Field(default_factory=dict)


class RouteSpecV1(Frozen):
    """A route: handoffs of `kind` from `from` go to `to`, under `standard`.

    `from` is one process, a group of processes (a default route for each member) or `*` (a
    default route from any process); `when` narrows the route to handoffs whose attributes
    equal the given values (the most specific matching route wins: shared.routes); `alerting`
    says how ops tooling treats the route (no effect on clocks or routing); `next` says what
    follows when the receiving team completes the handoff; `escalation` overrides the
    receiving team's escalation steps for handoffs of this route.
    """

    id: Slug
    from_process: RouteOrigin = Field(alias="from")
    kind: Slug
    to_process: Slug = Field(alias="to")
    when: dict[str, str | int | float | bool] = Field(default_factory=dict)
    standard: ServiceStandardV1
    alerting: AlertingV1 = AlertingV1()
    next: tuple[NextStepV1, ...] = Field(
        (), description="what follows: the first step whose `when` matches opens the next handoff"
    )
    escalation: tuple[EscalationStepV1, ...] | None = Field(
        None, description="escalation steps of the receiving team for this route (else its own)"
    )


class ProcessMapV1(Frozen):
    """The resolved process map as routing publishes it (standards versioned, calendars
    embedded): the catalog other services read from `routing.processmap.v1`."""

    version: int = Field(ge=1, description="+1 each time the published map changes")
    published_at: UtcDatetime
    source: str = Field("", description="where routing loaded it from (file path)")
    revision: str = Field("", description="the source's revision if given, e.g. a git commit")
    author: str = Field("", description="who published this version, if given")
    holidays_version: str | None = Field(
        None,
        description="the python-holidays data the calendars' public holidays come from "
        "(upgrading it moves deadlines, so it is part of the map in force)",
    )
    calendars: tuple[CalendarV1, ...]
    processes: tuple[ProcessV1, ...]
    groups: dict[Slug, tuple[Slug, ...]] = Field(
        default_factory=dict, description="group id -> member process ids, for routes' `from`"
    )
    routes: tuple[RouteSpecV1, ...]


class MapChangesV1(Frozen):
    """How a published map version differs from the one before, route by route."""

    new: int = Field(0, ge=0, description="routes that did not exist before")
    changed: int = Field(0, ge=0, description="routes whose standard got a new version")
    unchanged: int = Field(0, ge=0)
    removed: int = Field(0, ge=0, description="routes the previous version had")


class MapManifestV1(Frozen):
    """What routing publishes about one map version on `routing.processmap.v1`: who published
    it, when, from where, and how to reassemble the map from its parts (shared.mapwire)."""

    version: int = Field(ge=1)
    published_at: UtcDatetime
    source: str = ""
    revision: str = ""
    author: str = ""
    encoding: str = Field("zlib+json", description="the parts joined are the zlib of the JSON")
    parts: int = Field(ge=1, description="records map/<version>/<n>, n = 0 .. parts - 1")
    size: int = Field(ge=0, description="bytes of the map's JSON")
    compressed: int = Field(ge=0, description="bytes of the parts together")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the map's JSON")
    processes: int = Field(0, ge=0)
    groups: int = Field(0, ge=0)
    routes: int = Field(0, ge=0)
    changes: MapChangesV1 = MapChangesV1()
