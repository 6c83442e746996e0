"""What sla's API reads: one handoff, the lists, closed handoffs by period, a case.

Every answer comes from the status table this instance materialises (`adapters.status_table`),
never from the partitions it happens to own: any instance answers any query, the same way.
Rows are brought to the clock's now (`domain.status`).
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.calendar import CalendarError, to_us
from shared.clock import Clock
from shared.contracts import ClockName, Priority
from shared.events import HandoffStatusV1, Outcome
from sla.adapters.status_table import Entry, StatusTable, Timeline, unpack_briefs
from sla.domain.cases import CaseHandoff, CaseView, case_view
from sla.domain.status import NO_DEADLINE, Brief, StatusNow, listed, status_now

US = 1_000_000


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list may be narrowed to."""

    from_process: str | None = None
    to_process: str | None = None
    kind: str | None = None
    priority: Priority | None = None

    def admits(self, entry: Entry) -> bool:
        """True when the handoff matches every filter given."""
        f, t = entry.pair
        return not (
            (self.from_process and f != self.from_process)
            or (self.to_process and t != self.to_process)
            or (self.kind and entry.kind != self.kind)
            or (self.priority and entry.priority != self.priority.value)
        )


@dataclass(frozen=True, slots=True)
class Listed:
    """One handoff in a list of open handoffs, with the clock that put it there."""

    handoff_id: str
    entry: Entry
    clock: Brief
    used_ratio: float

    @property
    def deadline(self) -> int | None:
        """The listed clock's deadline (microseconds)."""
        return self.clock.deadline


@dataclass(frozen=True, slots=True)
class Closed:
    """One closed handoff: when, and whether any of its clocks missed."""

    handoff_id: str
    entry: Entry

    @property
    def closed_at(self) -> int:
        """When it was completed or cancelled (microseconds)."""
        assert self.entry.closed_at is not None
        return self.entry.closed_at


class BadCursor(ValueError):
    """A paging cursor this API did not hand out."""


def encode_cursor(item: Closed) -> str:
    """The opaque cursor that continues a list after `item`."""
    raw = json.dumps([item.closed_at, item.handoff_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(closed_at, handoff id) of a cursor; raises BadCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        closed_at, handoff_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("not a cursor this API returned") from exc
    if not isinstance(closed_at, int) or not isinstance(handoff_id, str):
        raise BadCursor("not a cursor this API returned")
    return closed_at, handoff_id


class SlaQueries:
    """Reads for the API, as of the clock's now."""

    def __init__(self, table: StatusTable, clock: Clock) -> None:
        self._table = table
        self._clock = clock

    def now(self) -> int:
        """The instant answers are computed for (microseconds)."""
        return to_us(self._clock.now())

    # ------------------------------------------------------------------ one handoff

    def handoff(self, handoff_id: str) -> StatusNow | None:
        """A handoff's status, brought to now (None: no instance knows it)."""
        row = self._table.row(handoff_id)
        if row is None:
            return None
        return self._now(handoff_id, row)

    def _now(self, handoff_id: str, row: HandoffStatusV1) -> StatusNow:
        entry = self._table.entries.get(handoff_id)
        calendar = entry.calendar if entry is not None else None
        try:
            return status_now(row, self.now(), calendar)
        except CalendarError:
            return status_now(row, to_us(row.as_of), calendar)  # as written, not extrapolated

    # ------------------------------------------------------------------ open handoffs

    def listed(self, view: str, filters: Filters, limit: int) -> tuple[int, list[Listed]]:
        """The open handoffs of a view, most urgent first: (how many, the first `limit`)."""
        now = self.now()
        table = self._table
        if filters.from_process or filters.to_process:
            ids: Iterable[str] = [
                i
                for pair, members in table.active_by_pair.items()
                if (not filters.from_process or pair[0] == filters.from_process)
                and (not filters.to_process or pair[1] == filters.to_process)
                for i in members
            ]
        elif view == "at-risk":
            ids = self._until(table.warned, now)
        elif view == "overdue":
            ids = self._until(table.active, now)
        else:
            ids = (i for _, i in table.active.ascending())
        found: list[Listed] = []
        for handoff_id in ids:
            entry = table.entries.get(handoff_id)
            if entry is None or not filters.admits(entry):
                continue
            clock = listed(unpack_briefs(entry.briefs), entry.state, view, now)
            if clock is None:
                continue
            used = _used(clock, entry, now)
            found.append(Listed(handoff_id, entry, clock, used))
        first = heapq.nsmallest(limit, found, key=_urgency)
        return len(found), first

    @staticmethod
    def _until(timeline: Timeline, now: int) -> Iterator[str]:
        for instant, handoff_id in timeline.ascending():
            if instant > now:
                return
            yield handoff_id

    # ------------------------------------------------------------------ closed handoffs

    def closed(
        self,
        filters: Filters,
        *,
        since: int | None,
        until: int | None,
        outcome: Outcome | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Closed], str | None]:
        """Closed handoffs, latest first, closed in [since, until), breached (`missed`) or not
        (`met`): one page and the cursor of the next (None: no more)."""
        table = self._table
        timeline = table.closed
        if filters.from_process and filters.to_process:
            pair = (filters.from_process, filters.to_process)
            timeline = table.closed_by_pair.get(pair) or Timeline()
        before = decode_cursor(cursor) if cursor is not None else None
        if until is not None and (before is None or (until, "") < before):
            before = (until, "")
        page: list[Closed] = []
        for instant, handoff_id in timeline.descending(before):
            if since is not None and instant < since:
                break
            entry = table.entries.get(handoff_id)
            if entry is None or not filters.admits(entry):
                continue
            if outcome is not None and entry.missed != (outcome is Outcome.MISSED):
                continue
            if len(page) == limit:
                return page, encode_cursor(page[-1])
            page.append(Closed(handoff_id, entry))
        return page, None

    # ------------------------------------------------------------------ cases

    def case(self, case_id: str) -> tuple[CaseView, dict[str, StatusNow]] | None:
        """Which teams held a case how long, with each of its handoffs (None: unknown)."""
        rows = self._table.case(case_id)
        if not rows:
            return None
        now = self.now()
        statuses = {hid: self._now(hid, row) for hid, row in rows}
        items = [_case_item(hid, status) for hid, status in statuses.items()]
        return case_view(case_id, items, now), statuses


def _urgency(item: Listed) -> tuple[int, str]:
    deadline = item.clock.deadline
    return (NO_DEADLINE if deadline is None else deadline), item.handoff_id


def _used(clock: Brief, entry: Entry, now: int) -> float:
    if not clock.target:
        return 0.0
    try:
        business = clock.business_now(entry.as_of, now, entry.calendar)
    except CalendarError:
        business = clock.business
    return round(business / clock.target, 4)


def _case_item(handoff_id: str, status: StatusNow) -> CaseHandoff:
    row = status.row
    cycles = tuple(
        (to_us(c.started_at), None if c.ended_at is None else to_us(c.ended_at)) for c in row.cycles
    )
    held = sum(
        c.elapsed_business + c.paused_business
        for c in status.clocks
        if c.status.clock is ClockName.RESOLUTION
    )
    missed = tuple(c.status.clock for c in status.clocks if c.outcome is Outcome.MISSED)
    starts = [s for s, _ in cycles] + [to_us(c.status.started_at) for c in status.clocks]
    history = [to_us(e.occurred_at) for e in row.history]
    first = min(starts) if starts else min(history, default=to_us(row.as_of))
    return CaseHandoff(handoff_id, row.from_process, row.to_process, cycles, held, missed, first)
