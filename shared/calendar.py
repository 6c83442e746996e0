"""Business-calendar arithmetic: exact business time between instants, and deadlines.

Every instant is an integer count of microseconds since the Unix epoch (UTC), so sums and
differences are exact: no float drift, whatever the duration.

A calendar's working intervals are written in local wall time of an IANA timezone. Each local
date's intervals are turned into real (UTC) intervals once, and business time is the REAL time
spent inside them: an interval that crosses a spring-forward gap is shorter than its wall-clock
length, one that crosses a fall-back fold is longer.

Local wall time -> instant, the one rule used for every boundary (interval start, interval end,
"24:00", the start of a year): a local time maps to the first instant at which the wall clock
shows that time or a later one.
  * An ordinary local time has exactly one instant.
  * An ambiguous local time (fall-back fold) maps to its first occurrence, i.e. fold=0.
  * A nonexistent local time (spring-forward gap) maps to the transition instant itself, the
    moment the clock jumps past it: work "from 02:30" on a day that skips 02:00-03:00 starts at
    03:00. Plain fold=0 would use the pre-transition offset instead and land *after* 03:00 (02:30
    CET is 03:30 CEST), so an interval "02:30-03:15" would end before it starts; our rule is
    monotonic, so intervals never invert or overlap, and an interval lying entirely in the gap
    simply has no business time.

Holidays are local dates with no working time: the calendar's explicit dates, plus (when a
country is given) python-holidays' ``country_holidays(country, subdiv=...)`` with its default
behaviour, which includes observed/substitute days for countries that have them (e.g. US
Independence Day on a Saturday is observed on the Friday). A holiday on a day without working
hours changes nothing.

Tables are built lazily, one local year at a time (intervals + prefix sums of business time), so
``elapsed_us`` and ``add_us`` are a couple of bisects once a year is built. Years 1990..2199 are
supported; instants outside them, deadlines beyond them, and a calendar with no working time
for two whole years raise CalendarError (a ValueError): the caller decides what an uncomputable
clock means, this module never guesses.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from shared.contracts import CalendarV1

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "BusinessCalendar",
    "CalendarError",
    "calendar_for",
    "from_us",
    "to_us",
]

MIN_YEAR = 1990
MAX_YEAR = 2199

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
# Why 2: a real calendar always has working time within a year (a year of holidays is not a
# calendar); two whole empty years after the start can only be a misconfiguration, so stop there
# instead of walking the table to 2199.
_MAX_EMPTY_YEARS = 2


class CalendarError(ValueError):
    """Business time that cannot be computed on this calendar (outside the supported years,
    or no working time at all for two years)."""


def to_us(dt: datetime) -> int:
    """Exact microseconds since the Unix epoch of an aware datetime; naive raises ValueError."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} is ambiguous: give it a UTC offset")
    # Aware datetime subtraction is exact integer arithmetic (days, seconds, microseconds).
    return (dt - _EPOCH) // _ONE_US


@lru_cache(maxsize=1 << 16)
def from_us(us: int) -> datetime:
    """The aware UTC datetime of a count of microseconds since the Unix epoch (cached: sla
    writes the same deadlines and event times into every decision and status row)."""
    return _EPOCH + timedelta(microseconds=us)


class _Year:
    """One local year of a calendar: sorted disjoint working intervals and their prefix sums."""

    __slots__ = ("cum", "cum_end", "ends", "hi", "lo", "starts", "total", "year")

    def __init__(self, year: int, lo: int, hi: int, intervals: list[tuple[int, int]]) -> None:
        self.year = year
        self.lo = lo  # first instant of the local year (inclusive)
        self.hi = hi  # first instant of the next local year (exclusive)
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.cum: list[int] = []  # business time of the year before interval i starts
        self.cum_end: list[int] = []  # ... and once interval i has ended
        total = 0
        for start, end in intervals:
            if self.ends and self.ends[-1] == start:
                # Adjacent intervals (e.g. "22:00-24:00" then "00:00-..." next day) are merged:
                # one interval is the same business time and one bisect fewer to get wrong.
                self.ends[-1] = end
                total += end - start
                self.cum_end[-1] = total
                continue
            self.starts.append(start)
            self.ends.append(end)
            self.cum.append(total)
            total += end - start
            self.cum_end.append(total)
        self.total = total

    def cum_at(self, t: int) -> int:
        """Business time from the start of the year to t (lo <= t <= hi)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]

    def instant_at(self, c: int) -> int:
        """The earliest instant with business time c since the year began (0 < c <= total)."""
        # First interval whose cumulative end reaches c: if c is exactly an interval's end, the
        # deadline is that end, not the next opening.
        i = bisect_left(self.cum_end, c)
        return self.starts[i] + (c - self.cum[i])


class BusinessCalendar:
    """Exact business-time arithmetic on one CalendarV1 (see the module docstring for rules)."""

    def __init__(self, spec: CalendarV1) -> None:
        self.spec = spec
        self.always_open = spec.always_open
        self._tz = ZoneInfo(spec.timezone)
        self._weekly = spec.weekly_intervals()
        self._explicit_holidays = frozenset(spec.holidays.dates)
        self._years: dict[int, _Year] = {}
        self._bounds: dict[int, int] = {}
        self._last: _Year | None = None
        if self.always_open:
            # 24x7 needs no tables; its range is the UTC years.
            self._min_us = to_us(datetime(MIN_YEAR, 1, 1, tzinfo=UTC))
            self._max_us = to_us(datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC))
        else:
            self._min_us = self._year_start(MIN_YEAR)
            self._max_us = self._year_start(MAX_YEAR + 1)

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.spec.id!r}, {self.spec.timezone!r})"

    # ------------------------------------------------------------------ public, integer API

    def elapsed_us(self, a_us: int, b_us: int) -> int:
        """Business microseconds in [a, b); 0 when b <= a."""
        self._check(a_us)
        self._check(b_us)
        if b_us <= a_us:
            return 0
        if self.always_open:
            return b_us - a_us
        ya = self._year_of(a_us)
        if b_us <= ya.hi:
            return ya.cum_at(b_us) - ya.cum_at(a_us)
        yb = self._year_of(b_us)
        total = ya.total - ya.cum_at(a_us) + yb.cum_at(b_us)
        for year in range(ya.year + 1, yb.year):
            total += self._year(year).total
        return total

    def add_us(self, start_us: int, duration_us: int) -> int:
        """The earliest instant t >= start with elapsed_us(start, t) == duration (the deadline)."""
        if duration_us < 0:
            raise CalendarError(f"duration must not be negative, got {duration_us} us")
        self._check(start_us)
        if duration_us == 0:
            return start_us
        if self.always_open:
            return self._check(start_us + duration_us)
        y = self._year_of(start_us)
        target = y.cum_at(start_us) + duration_us
        empty_years = 0
        while target > y.total:
            target -= y.total
            if y.year == MAX_YEAR:
                raise CalendarError(
                    f"deadline of calendar {self.spec.id!r} falls after {MAX_YEAR}: "
                    f"supported years are {MIN_YEAR}..{MAX_YEAR}"
                )
            y = self._year(y.year + 1)
            empty_years = empty_years + 1 if y.total == 0 else 0
            if empty_years >= _MAX_EMPTY_YEARS:
                raise CalendarError(
                    f"calendar {self.spec.id!r} has no working time in {y.year - 1}..{y.year}: "
                    "check its hours and holidays"
                )
        return y.instant_at(target)

    def is_open_us(self, t_us: int) -> bool:
        """Whether instant t is inside a working interval (intervals are [start, end))."""
        self._check(t_us)
        if self.always_open:
            return True
        y = self._year_of(t_us)
        i = bisect_right(y.starts, t_us) - 1
        return i >= 0 and t_us < y.ends[i]

    # ------------------------------------------------------------------ datetime wrappers

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Business time in [a, b) between two aware datetimes."""
        return timedelta(microseconds=self.elapsed_us(to_us(a), to_us(b)))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The deadline (aware UTC) of a business duration starting at an aware datetime."""
        return from_us(self.add_us(to_us(start), duration // _ONE_US))

    def is_open(self, t: datetime) -> bool:
        """Whether an aware datetime is inside a working interval."""
        return self.is_open_us(to_us(t))

    # ------------------------------------------------------------------ tables

    def _check(self, t_us: int) -> int:
        if not self._min_us <= t_us < self._max_us:
            raise CalendarError(
                f"instant {t_us} us is outside the supported years {MIN_YEAR}..{MAX_YEAR} "
                f"of calendar {self.spec.id!r}"
            )
        return t_us

    def _year_of(self, t_us: int) -> _Year:
        """The year table holding instant t (already range-checked)."""
        last = self._last
        if last is not None and last.lo <= t_us < last.hi:
            return last
        # The local year differs from the UTC year by at most a day around New Year.
        year = from_us(t_us).year
        if t_us < self._year_start(year):
            year -= 1
        elif t_us >= self._year_start(year + 1):
            year += 1
        y = self._year(year)
        self._last = y
        return y

    def _year(self, year: int) -> _Year:
        y = self._years.get(year)
        if y is None:
            y = self._build(year)
            # Concurrent builders compute the same table; whichever is stored last is equal.
            self._years[year] = y
        return y

    def _year_start(self, year: int) -> int:
        start = self._bounds.get(year)
        if start is None:
            start = self._bounds[year] = self._local_to_us(datetime(year, 1, 1))
        return start

    def _holidays(self, year: int) -> set[date]:
        days = {d for d in self._explicit_holidays if d.year == year}
        country = self.spec.holidays.country
        if country is not None:
            import holidays

            # One call per year table, never per operation. A year's set already holds observed
            # days that belong to a neighbouring year's holiday (US New Year's Day 2028, a
            # Saturday, is observed on Friday 2027-12-31 and listed under 2027).
            found = holidays.country_holidays(
                country, subdiv=self.spec.holidays.subdivision, years=year
            )
            days.update(d for d in found if d.year == year)
        return days

    def _build(self, year: int) -> _Year:
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise CalendarError(
                f"year {year} is outside the supported years {MIN_YEAR}..{MAX_YEAR}"
            )
        off = self._holidays(year)
        intervals: list[tuple[int, int]] = []
        day = date(year, 1, 1)
        while day.year == year:
            if day not in off:
                for start, end in self._weekly[day.weekday()]:
                    s = self._local_to_us(datetime.combine(day, start))
                    # "24:00" (end None) is the start of the next local day.
                    e = self._local_to_us(
                        datetime.combine(day + _ONE_DAY, time())
                        if end is None
                        else datetime.combine(day, end)
                    )
                    if e > s:  # an interval lying wholly in a DST gap has no time at all
                        intervals.append((s, e))
            day += _ONE_DAY
        return _Year(year, self._year_start(year), self._year_start(year + 1), intervals)

    def _local_to_us(self, local: datetime) -> int:
        """The first instant at which the wall clock shows `local` or later (module docstring)."""
        off0 = self._tz.utcoffset(local.replace(fold=0))
        off1 = self._tz.utcoffset(local.replace(fold=1))
        assert off0 is not None and off1 is not None  # a ZoneInfo always has an offset
        wall_us = (local - _NAIVE_EPOCH) // _ONE_US
        if off0 >= off1:
            # Ordinary time (equal offsets) or a fold (fold=0 is the first occurrence).
            return wall_us - off0 // _ONE_US
        # A gap: fold=1 (post-transition offset) lands before the transition, fold=0 after it.
        # Find the transition, the first instant whose wall time reaches `local`, by bisection
        # on whole microseconds; this runs only for boundaries that fall inside a gap.
        # Invariant: wall(lo) < local <= wall(hi).
        lo, hi = wall_us - off1 // _ONE_US, wall_us - off0 // _ONE_US
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if from_us(mid).astimezone(self._tz).replace(tzinfo=None) >= local:
                hi = mid
            else:
                lo = mid
        return hi


@lru_cache(maxsize=1024)
def _calendar_from_json(key: str) -> BusinessCalendar:
    return BusinessCalendar(CalendarV1.model_validate_json(key))


def calendar_for(spec: CalendarV1) -> BusinessCalendar:
    """The shared BusinessCalendar of a spec (cached by its JSON, so equal specs share tables)."""
    return _calendar_from_json(spec.model_dump_json())
