"""Business-calendar arithmetic: exact elapsed business time and deadlines (SPEC 3.2)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.calendar import BusinessCalendar, calendar_for, from_us, to_us
from shared.contracts import CalendarV1

US = 1
SECOND = 1_000_000 * US
MINUTE = 60 * SECOND
QUARTER = 15 * MINUTE
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

BRUSSELS = ZoneInfo("Europe/Brussels")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")


def spec(**fields: Any) -> CalendarV1:
    return CalendarV1.model_validate({"id": "test", **fields})


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


OFFICE_HOURS = {"mon-fri": ("08:30-12:00", "13:00-17:30")}  # 8h a day

BE_OFFICE = BusinessCalendar(
    spec(
        id="be-office",
        timezone="Europe/Brussels",
        hours=OFFICE_HOURS,
        holidays={"country": "BE", "dates": ["2026-12-24"]},
    )
)
BE_NO_HOLIDAYS = BusinessCalendar(spec(timezone="Europe/Brussels", hours=OFFICE_HOURS))
NY_OFFICE = BusinessCalendar(
    spec(
        id="ny-office",
        timezone="America/New_York",
        hours={"mon-fri": ("09:00-17:00",)},
        holidays={"country": "US"},
    )
)
# Southern-hemisphere DST, with Sunday intervals whose boundaries fall inside the spring-forward
# gap (02:00-03:00 skipped in October) and the fall-back fold (02:00-03:00 twice in April).
SYDNEY = BusinessCalendar(
    spec(
        id="sydney",
        timezone="Australia/Sydney",
        hours={"mon-fri": ("09:00-17:00",), "sun": ("01:30-02:30", "02:45-03:30")},
        holidays={"country": "AU", "subdivision": "NSW"},
    )
)
# Chile changes clocks at local midnight, so "24:00" and "00:00" fall in the gap or the fold.
SANTIAGO_EVENINGS = BusinessCalendar(
    spec(
        id="santiago-evenings",
        timezone="America/Santiago",
        hours={
            "mon-fri": ("09:00-13:00", "22:00-24:00"),
            "sat": ("10:00-14:00", "22:00-24:00"),
            "sun": ("00:00-02:00",),
        },
        holidays={"country": "CL"},
    )
)
ALWAYS = BusinessCalendar(spec(id="always", always_open=True))

CALENDARS = [BE_OFFICE, NY_OFFICE, SYDNEY, SANTIAGO_EVENINGS, ALWAYS]

# --------------------------------------------------------------------------- strategies

FIRST = to_us(datetime(2024, 1, 1, tzinfo=UTC))
LAST = to_us(datetime(2028, 1, 1, tzinfo=UTC))


def _transitions() -> list[int]:
    """Instants near every DST change of the test zones in 2024-2027, found from tzdata."""
    out = []
    for zone in ("Europe/Brussels", "America/New_York", "Australia/Sydney", "America/Santiago"):
        tz = ZoneInfo(zone)
        day = date(2024, 1, 1)
        while day.year < 2028:
            noon = datetime.combine(day, time(12), tz)
            if noon.utcoffset() != (noon + timedelta(days=1)).utcoffset():
                out.append(to_us(noon))
            day += timedelta(days=1)
    return out


TRANSITIONS = _transitions()
assert len(TRANSITIONS) == 4 * 4 * 2  # four zones, four years, two changes a year


def _quarters(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo // QUARTER, hi // QUARTER).map(lambda q: q * QUARTER)


# Quarter-hour aligned instants hit interval boundaries (17:30, 24:00, DST changes) exactly.
aligned_instants = st.one_of(
    _quarters(FIRST, LAST),
    st.sampled_from(TRANSITIONS).flatmap(lambda t: _quarters(t - 4 * DAY, t + 4 * DAY)),
)
instants = st.one_of(
    st.integers(FIRST, LAST),
    aligned_instants,
    st.sampled_from(TRANSITIONS).flatmap(lambda t: st.integers(t - 4 * DAY, t + 4 * DAY)),
)
durations = st.one_of(
    st.integers(0, 26 * WEEK),
    _quarters(0, 26 * WEEK),
    st.integers(0, 10 * HOUR),
    st.integers(0, 10),
)
calendars = st.sampled_from(CALENDARS)
PROPERTY = settings(max_examples=250, deadline=None)

# --------------------------------------------------------------------------- properties


@PROPERTY
@given(calendars, instants, durations)
def test_elapsed_from_start_to_deadline_is_the_duration(
    cal: BusinessCalendar, start: int, duration: int
) -> None:
    assert cal.elapsed_us(start, cal.add_us(start, duration)) == duration


@PROPERTY
@given(calendars, instants, durations, durations)
def test_deadline_grows_strictly_with_duration(
    cal: BusinessCalendar, start: int, d1: int, d2: int
) -> None:
    d1, d2 = sorted((d1, d2))
    t1, t2 = cal.add_us(start, d1), cal.add_us(start, d2)
    assert start <= t1 <= t2
    if d2 > d1:
        assert t1 < t2


@PROPERTY
@given(calendars, instants, instants, instants)
def test_elapsed_is_additive(cal: BusinessCalendar, a: int, b: int, c: int) -> None:
    a, b, c = sorted((a, b, c))
    assert cal.elapsed_us(a, b) + cal.elapsed_us(b, c) == cal.elapsed_us(a, c)


@PROPERTY
@given(calendars, instants, instants)
def test_elapsed_is_between_zero_and_wall_time(cal: BusinessCalendar, a: int, b: int) -> None:
    elapsed = cal.elapsed_us(a, b)
    assert 0 <= elapsed <= max(b - a, 0)
    if b <= a:
        assert elapsed == 0


@PROPERTY
@given(calendars, instants, durations.filter(lambda d: d > 0))
def test_deadline_is_in_working_time_or_at_an_interval_end(
    cal: BusinessCalendar, start: int, duration: int
) -> None:
    deadline = cal.add_us(start, duration)
    # The microsecond just before the deadline is business time, so the deadline is inside a
    # working interval or exactly at its end; never somewhere in closed time.
    assert cal.is_open_us(deadline - 1)
    assert cal.is_open_us(deadline) or cal.elapsed_us(deadline, deadline + 1) == 0


@PROPERTY
@given(calendars, instants, durations.filter(lambda d: d > 0))
def test_deadline_is_the_earliest_such_instant(
    cal: BusinessCalendar, start: int, duration: int
) -> None:
    deadline = cal.add_us(start, duration)
    assert cal.elapsed_us(start, deadline - 1) < duration


@PROPERTY
@given(instants, durations, instants)
def test_always_open_agrees_with_wall_time(start: int, duration: int, other: int) -> None:
    assert ALWAYS.add_us(start, duration) == start + duration
    assert ALWAYS.elapsed_us(start, other) == max(other - start, 0)
    assert ALWAYS.is_open_us(other)


@PROPERTY
@given(calendars, instants, durations)
def test_datetime_wrappers_agree_with_integer_api(
    cal: BusinessCalendar, start: int, duration: int
) -> None:
    aware = from_us(start).astimezone(BRUSSELS)
    deadline = cal.add(aware, timedelta(microseconds=duration))
    assert deadline.tzinfo is UTC
    assert to_us(deadline) == cal.add_us(start, duration)
    assert cal.elapsed(aware, deadline) == timedelta(microseconds=duration)


# --------------------------------------------------------------------------- an independent oracle


@cache
def _days_off(cal: BusinessCalendar) -> frozenset[date]:
    h = cal.spec.holidays
    found = set(h.dates)
    if h.country is not None:
        found.update(
            holidays.country_holidays(h.country, subdiv=h.subdivision, years=range(2023, 2030))
        )
    return frozenset(found)


def _oracle_open_quarters(cal: BusinessCalendar, a: int, b: int) -> list[bool]:
    """Open or not, for each quarter hour in [a, b), computed from wall clocks alone.

    The documented rule maps a local time L to the first instant whose wall clock shows L or
    later. So an instant is past L exactly when the highest wall time shown so far is >= L, and
    an instant is open when that running maximum lies in a working interval of its local date.
    All boundaries and DST changes of the test zones are on quarter hours, so sampling is exact.
    """
    if cal.always_open:
        return [True] * ((b - a) // QUARTER)
    tz = ZoneInfo(cal.spec.timezone)
    weekly = cal.spec.weekly_intervals()
    off = _days_off(cal)
    highest = datetime.min
    out = []
    for u in range(a - DAY, b, QUARTER):  # a day of history: folds repeat at most an hour
        highest = max(highest, from_us(u).astimezone(tz).replace(tzinfo=None))
        if u < a:
            continue
        day, clock = highest.date(), highest.time()
        out.append(
            day not in off
            and any(s <= clock and (e is None or clock < e) for s, e in weekly[day.weekday()])
        )
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars, aligned_instants, _quarters(0, 4 * DAY))
def test_business_time_matches_a_wall_clock_oracle(
    cal: BusinessCalendar, a: int, span: int
) -> None:
    expected = _oracle_open_quarters(cal, a, a + span)
    assert [cal.is_open_us(u) for u in range(a, a + span, QUARTER)] == expected
    assert cal.elapsed_us(a, a + span) == sum(expected) * QUARTER


# --------------------------------------------------------------------------- hand-checked examples


def test_deadline_skips_lunch_break() -> None:
    start = local(BRUSSELS, 2026, 3, 2, 11, 0)  # Monday
    assert BE_OFFICE.add(start, timedelta(hours=2)) == local(BRUSSELS, 2026, 3, 2, 14, 0)


def test_start_outside_hours_starts_counting_at_next_opening() -> None:
    start = local(BRUSSELS, 2026, 3, 3, 6, 0)  # Tuesday, before opening
    assert BE_OFFICE.add(start, timedelta(hours=1)) == local(BRUSSELS, 2026, 3, 3, 9, 30)
    assert BE_OFFICE.elapsed(start, local(BRUSSELS, 2026, 3, 3, 8, 30)) == timedelta(0)


def test_friday_evening_plus_two_hours_is_monday_morning() -> None:
    start = local(BRUSSELS, 2026, 3, 6, 19, 0)  # Friday
    assert BE_OFFICE.add(start, timedelta(hours=2)) == local(BRUSSELS, 2026, 3, 9, 10, 30)


def test_end_of_interval_deadline_is_that_end_not_next_morning() -> None:
    monday = (2026, 3, 2)
    afternoon = local(BRUSSELS, *monday, 16, 30)
    assert BE_OFFICE.add(afternoon, timedelta(hours=1)) == local(BRUSSELS, *monday, 17, 30)
    morning = local(BRUSSELS, *monday, 11, 0)
    assert BE_OFFICE.add(morning, timedelta(hours=1)) == local(BRUSSELS, *monday, 12, 0)


def test_zero_duration_is_the_start_even_when_closed() -> None:
    sunday = local(BRUSSELS, 2026, 3, 1, 15, 0)
    assert BE_OFFICE.add(sunday, timedelta(0)) == sunday


def test_interval_boundaries_are_start_inclusive_end_exclusive() -> None:
    assert BE_OFFICE.is_open(local(BRUSSELS, 2026, 3, 2, 8, 30))
    assert not BE_OFFICE.is_open(local(BRUSSELS, 2026, 3, 2, 12, 0))
    assert not BE_OFFICE.is_open(local(BRUSSELS, 2026, 3, 2, 8, 29, 59))


def test_spring_forward_day_interval_is_one_hour_shorter() -> None:
    cal = BusinessCalendar(spec(timezone="Europe/Brussels", hours={"sun": ("01:00-04:00",)}))
    sunday = local(BRUSSELS, 2026, 3, 29)  # 02:00 CET -> 03:00 CEST
    assert cal.elapsed(sunday, sunday + timedelta(days=1)) == timedelta(hours=2)
    assert cal.add(sunday, timedelta(hours=2)) == local(BRUSSELS, 2026, 3, 29, 4, 0)


def test_fall_back_day_interval_is_one_hour_longer() -> None:
    cal = BusinessCalendar(spec(timezone="Europe/Brussels", hours={"sun": ("01:00-04:00",)}))
    sunday = local(BRUSSELS, 2026, 10, 25)  # 03:00 CEST -> 02:00 CET
    assert cal.elapsed(sunday, sunday + timedelta(days=1)) == timedelta(hours=4)
    assert cal.add(sunday, timedelta(hours=4)) == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)


def test_boundary_in_spring_forward_gap_is_the_transition_instant() -> None:
    cal = BusinessCalendar(
        spec(timezone="Europe/Brussels", hours={"sun": ("01:00-02:30", "02:30-03:15")})
    )
    # 02:30 does not exist on 2026-03-29: both intervals meet at 01:00 UTC (03:00 CEST).
    start = local(BRUSSELS, 2026, 3, 29)
    assert cal.elapsed(start, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == timedelta(hours=1)
    assert cal.add(start, timedelta(hours=1, minutes=15)) == datetime(
        2026, 3, 29, 1, 15, tzinfo=UTC
    )


def test_interval_wholly_inside_the_gap_has_no_business_time() -> None:
    cal = BusinessCalendar(spec(timezone="Europe/Brussels", hours={"sun": ("02:15-02:45",)}))
    assert cal.elapsed(local(BRUSSELS, 2026, 3, 29), local(BRUSSELS, 2026, 3, 30)) == timedelta(0)
    assert cal.elapsed(local(BRUSSELS, 2026, 3, 22), local(BRUSSELS, 2026, 3, 23)) == timedelta(
        minutes=30
    )


def test_boundary_in_fall_back_fold_is_its_first_occurrence() -> None:
    cal = BusinessCalendar(
        spec(timezone="Europe/Brussels", hours={"sun": ("01:00-02:30", "03:00-04:00")})
    )
    # 02:30 happens twice on 2026-10-25; the first interval ends at the first one (CEST).
    start = local(BRUSSELS, 2026, 10, 25)
    assert cal.add(start, timedelta(hours=1, minutes=30)) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert not cal.is_open(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 CET, second time


def test_midnight_gap_moves_24_00_and_00_00_to_the_transition() -> None:
    cal = BusinessCalendar(
        spec(timezone="America/Santiago", hours={"sat": ("22:00-24:00",), "sun": ("00:00-02:00",)})
    )
    # 2026-09-06 00:00 does not exist in Santiago (clocks jump to 01:00 -03, 04:00 UTC).
    saturday = local(SANTIAGO, 2026, 9, 5, 12, 0)
    assert cal.elapsed(saturday, local(SANTIAGO, 2026, 9, 6, 1, 0)) == timedelta(hours=2)
    assert cal.elapsed(saturday, saturday + timedelta(days=1)) == timedelta(hours=3)
    assert cal.add(saturday, timedelta(hours=2, minutes=30)) == local(SANTIAGO, 2026, 9, 6, 1, 30)


def test_midnight_fold_makes_evening_interval_one_hour_longer() -> None:
    cal = BusinessCalendar(spec(timezone="America/Santiago", hours={"sat": ("22:00-24:00",)}))
    # 2027-04-04 00:00 -03 goes back to 2027-04-03 23:00 -04: Saturday 23:00-24:00 happens twice.
    saturday = local(SANTIAGO, 2027, 4, 3, 12, 0)
    assert cal.elapsed(saturday, saturday + timedelta(days=1)) == timedelta(hours=3)


def test_evening_interval_to_midnight_continues_into_next_day() -> None:
    friday = local(SANTIAGO, 2026, 3, 13, 23, 0)
    # Friday 23:00-24:00, then Saturday 10:00-11:00.
    assert SANTIAGO_EVENINGS.add(friday, timedelta(hours=2)) == local(SANTIAGO, 2026, 3, 14, 11)
    saturday = local(SANTIAGO, 2026, 3, 14, 23, 0)
    # Saturday 23:00-24:00 runs straight on into Sunday 00:00-02:00.
    assert SANTIAGO_EVENINGS.add(saturday, timedelta(hours=2)) == local(SANTIAGO, 2026, 3, 15, 1)
    assert SANTIAGO_EVENINGS.is_open(local(SANTIAGO, 2026, 3, 15, 0, 0))


def test_public_holiday_has_no_business_time() -> None:
    national_day = local(BRUSSELS, 2026, 7, 21)  # Tuesday
    assert BE_OFFICE.elapsed(national_day, national_day + timedelta(days=1)) == timedelta(0)
    assert not BE_OFFICE.is_open(local(BRUSSELS, 2026, 7, 21, 10, 0))
    monday = local(BRUSSELS, 2026, 7, 20)
    assert BE_OFFICE.elapsed(monday, national_day) == timedelta(hours=8)
    christmas = local(BRUSSELS, 2026, 12, 25, 16, 0)  # Friday
    assert BE_OFFICE.add(christmas, timedelta(hours=1)) == local(BRUSSELS, 2026, 12, 28, 9, 30)


def test_holiday_on_weekend_changes_nothing() -> None:
    # Assumption Day 2026-08-15 is a Saturday; Belgium has no substitute day.
    friday, monday = local(BRUSSELS, 2026, 8, 14, 12, 0), local(BRUSSELS, 2026, 8, 17, 12, 0)
    assert BE_OFFICE.elapsed(friday, monday) == timedelta(hours=8)
    assert BE_NO_HOLIDAYS.elapsed(friday, monday) == timedelta(hours=8)
    assert BE_OFFICE.is_open(local(BRUSSELS, 2026, 8, 17, 9, 0))


def test_observed_holiday_follows_python_holidays_default() -> None:
    # US Independence Day 2026 is a Saturday; python-holidays observes it on Friday 3 July.
    friday = local(NEW_YORK, 2026, 7, 3)
    assert NY_OFFICE.elapsed(friday, friday + timedelta(days=1)) == timedelta(0)
    thursday = local(NEW_YORK, 2026, 7, 2)
    assert NY_OFFICE.elapsed(thursday, friday) == timedelta(hours=8)


def test_observed_day_of_next_years_holiday_is_off() -> None:
    # New Year's Day 2028 is a Saturday; the US observes it on Friday 2027-12-31.
    friday = local(NEW_YORK, 2027, 12, 31)
    assert NY_OFFICE.elapsed(friday, friday + timedelta(days=1)) == timedelta(0)
    assert NY_OFFICE.add(local(NEW_YORK, 2027, 12, 30, 16), timedelta(hours=2)) == local(
        NEW_YORK, 2028, 1, 3, 10
    )


def test_explicit_holiday_date() -> None:
    thursday = local(BRUSSELS, 2026, 12, 24)  # the explicit date, not a Belgian public holiday
    assert BE_OFFICE.elapsed(thursday, thursday + timedelta(days=1)) == timedelta(0)
    assert BE_NO_HOLIDAYS.elapsed(thursday, thursday + timedelta(days=1)) == timedelta(hours=8)


def test_deadline_across_year_end() -> None:
    # Thu 31 Dec 15:00 has 2h30 left; Fri 1 Jan is New Year's Day; 2-3 Jan is the weekend.
    start = local(BRUSSELS, 2026, 12, 31, 15, 0)
    assert BE_OFFICE.add(start, timedelta(hours=8)) == local(BRUSSELS, 2027, 1, 4, 15, 0)
    assert BE_OFFICE.elapsed(start, local(BRUSSELS, 2027, 1, 4, 15, 0)) == timedelta(hours=8)


def test_twenty_six_weeks_is_exact() -> None:
    weeks = timedelta(hours=26 * 40)
    start = local(BRUSSELS, 2026, 1, 5, 8, 30)  # Monday opening
    # Without holidays 26 working weeks end at the close of the 26th Friday, across the DST change.
    assert BE_NO_HOLIDAYS.add(start, weeks) == local(BRUSSELS, 2026, 7, 3, 17, 30)
    # Easter Monday, 1 May, Ascension and Whit Monday push it four working days later.
    assert BE_OFFICE.add(start, weeks) == local(BRUSSELS, 2026, 7, 9, 17, 30)
    # Across the year end: 11 Nov, the explicit 24 Dec, 25 Dec, 1 Jan and Easter Monday 2027
    # fall on weekdays, so five working days later.
    autumn = local(BRUSSELS, 2026, 10, 5, 8, 30)
    assert BE_OFFICE.add(autumn, weeks) == local(BRUSSELS, 2027, 4, 9, 17, 30)
    assert BE_OFFICE.elapsed(autumn, local(BRUSSELS, 2027, 4, 9, 17, 30)) == weeks


def test_durations_spanning_several_years_are_exact() -> None:
    start = local(BRUSSELS, 2026, 1, 5, 8, 30)
    deadline = BE_NO_HOLIDAYS.add(start, timedelta(hours=3 * 52 * 40))  # 156 working weeks
    assert deadline == local(BRUSSELS, 2028, 12, 29, 17, 30)  # a Friday, 156 weeks on
    assert BE_NO_HOLIDAYS.elapsed(start, deadline) == timedelta(hours=3 * 52 * 40)


def test_sub_second_precision_is_kept() -> None:
    start = datetime(2026, 3, 2, 9, 0, 0, 1, tzinfo=BRUSSELS)
    deadline = BE_OFFICE.add(start, timedelta(hours=3, microseconds=999_998))
    assert deadline == datetime(2026, 3, 2, 13, 0, 0, 999_999, tzinfo=BRUSSELS)


def test_naive_datetime_rejected() -> None:
    naive = datetime(2026, 3, 2, 9, 0)
    with pytest.raises(ValueError, match="naive"):
        BE_OFFICE.add(naive, timedelta(hours=1))
    with pytest.raises(ValueError, match="naive"):
        BE_OFFICE.elapsed(naive, datetime(2026, 3, 3, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        to_us(naive)


def test_negative_duration_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        BE_OFFICE.add(local(BRUSSELS, 2026, 3, 2, 9), timedelta(seconds=-1))


@pytest.mark.parametrize("cal", [BE_OFFICE, ALWAYS], ids=["office", "24x7"])
def test_out_of_range_year_rejected(cal: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match=r"1990\.\.2199"):
        cal.elapsed(datetime(1989, 6, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match=r"1990\.\.2199"):
        cal.add(datetime(2200, 1, 2, tzinfo=UTC), timedelta(hours=1))
    with pytest.raises(ValueError, match=r"1990\.\.2199"):
        cal.add(datetime(2199, 12, 30, tzinfo=UTC), timedelta(hours=1000))
    # The first and last supported years work.
    assert cal.elapsed(datetime(1990, 1, 2, tzinfo=UTC), datetime(1990, 1, 10, tzinfo=UTC))
    assert cal.elapsed(datetime(2199, 12, 20, tzinfo=UTC), datetime(2199, 12, 30, tzinfo=UTC))


def test_calendar_without_working_time_raises_instead_of_looping() -> None:
    every_day = [date(2026, 1, 1) + timedelta(days=n) for n in range(3 * 366)]
    cal = BusinessCalendar(
        spec(timezone="Europe/Brussels", hours=OFFICE_HOURS, holidays={"dates": every_day})
    )
    with pytest.raises(ValueError, match="no working time"):
        cal.add(local(BRUSSELS, 2026, 3, 2, 9), timedelta(hours=1))
    assert cal.elapsed(local(BRUSSELS, 2026, 1, 1), local(BRUSSELS, 2029, 1, 1)) == timedelta(0)


def test_calendar_for_shares_one_instance_per_spec() -> None:
    be = spec(id="shared", timezone="Europe/Brussels", hours=OFFICE_HOURS)
    same = CalendarV1.model_validate_json(be.model_dump_json())
    assert calendar_for(be) is calendar_for(same)
    other = spec(id="shared", timezone="Europe/Paris", hours=OFFICE_HOURS)
    assert calendar_for(other) is not calendar_for(be)
    assert calendar_for(other).spec == other


def test_to_us_and_from_us_are_exact_inverses() -> None:
    dt = datetime(2026, 10, 25, 2, 30, 0, 123_457, tzinfo=BRUSSELS, fold=1)  # second 02:30
    us = to_us(dt)
    assert us == to_us(datetime(2026, 10, 25, 1, 30, 0, 123_457, tzinfo=UTC))
    assert from_us(us) == datetime(2026, 10, 25, 1, 30, 0, 123_457, tzinfo=UTC)
    assert from_us(us).tzinfo is UTC
    assert to_us(from_us(-1)) == -1
