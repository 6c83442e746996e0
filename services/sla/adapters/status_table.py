"""The status table (`sla.status.v1`), materialised on every sla instance: what its API reads.

Delivery semantics: read_committed from the beginning at every start and followed from then on
(shared TableReader: no consumer group, no commits). Every instance holds every partition's
rows, so any instance answers any query, whoever owns the handoff; a row is visible a few
milliseconds after the transaction that wrote it commits. A tombstone removes a handoff.

Rows are kept compressed: zlib with a preset dictionary drawn from the contract itself turns
~1.5 KB of JSON into ~260 B. Beside each row the table keeps what its indexes need -- the case,
the pair, the state, the few numbers of each running clock (`status.Brief`), when it closed --
so list views are computed without decoding rows:
- by case: the handoffs of a case (the case view reads only those);
- open handoffs by urgency (earliest running deadline) and by pair;
- running clocks by their first warning (the at-risk view);
- closed handoffs by when they closed, overall and by pair (paging by period).
"""

from __future__ import annotations

import bisect
import json
import struct
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import TypeVar

from shared.calendar import BusinessCalendar, calendar_for, to_us
from shared.contracts import CalendarV1, ClockName, Priority
from shared.events import (
    ClockStage,
    CycleStatusV1,
    EventRecordV1,
    HandoffState,
    HandoffStatusV1,
    Outcome,
)
from sla.domain.status import OPEN_STATES, Brief, urgency

Pair = tuple[str, str]
T = TypeVar("T")
_CLOCKS = list(ClockName)
_CLOCK_INDEX = {c.value: i for i, c in enumerate(_CLOCKS)}
_BRIEF = struct.Struct("<Bqqqqq")
_NONE = -(1 << 63)
_RUNNING = {ClockStage.RUNNING.value, ClockStage.PAUSED.value}
US = 1_000_000


def _sample_row() -> bytes:
    """A row with every field: the compression dictionary (the keys are most of a row)."""
    at = datetime.fromisoformat("2026-03-02T09:30:00.123456+00:00")
    clock = {
        "clock": ClockName.RESPONSE,
        "cycle": 1,
        "stage": ClockStage.RUNNING,
        "outcome": Outcome.MET,
        "started_at": at,
        "deadline": at,
        "stopped_at": None,
        "target_seconds": 14400.0,
        "priority": Priority.P3,
        "elapsed_business_seconds": 0.0,
        "elapsed_wall_seconds": 0.0,
        "paused_business_seconds": 0.0,
        "warnings_at": [at, at],
    }
    row = HandoffStatusV1.model_validate(
        {
            "case_id": "case",
            "kind": "incident",
            "from": "service-desk",
            "to": "it-l2",
            "priority": Priority.P3,
            "state": HandoffState.OPEN,
            "route_id": "route",
            "standard_version": 1,
            "clocks": [clock, {**clock, "clock": ClockName.RESOLUTION, "stage": "stopped"}],
            "as_of": at,
            "calendar": CalendarV1(
                id="office",
                timezone="Europe/Brussels",
                hours={"mon-fri": ("08:30-12:00", "13:00-17:30")},
                holidays={"country": "BE"},
            ),
            "objective": 0.95,
            "warnings": (50, 75),
            "cycles": [
                CycleStatusV1(cycle=1, started_at=at, ended_at=at, ended_by="completed"),
            ],
            "history": [
                EventRecordV1(type=t, occurred_at=at, event_id="5b0c1f0e-2d8a-4c39-9d55")
                for t in ("submitted", "accepted", "paused", "resumed", "completed")
            ],
            "closed_at": at,
        }
    )
    return row.model_dump_json(by_alias=True).encode()


_ZDICT = _sample_row()


def _compress(value: bytes) -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    return packer.compress(value) + packer.flush()


def _decompress(value: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, _ZDICT)
    return unpacker.decompress(value) + unpacker.flush()


def _us(text: str | None) -> int | None:
    return None if text is None else to_us(datetime.fromisoformat(text))


def _pack(briefs: list[Brief]) -> bytes:
    return b"".join(
        _BRIEF.pack(
            _CLOCK_INDEX[b.clock.value] | (2 if b.missed else 0) << 4 | (1 if b.paused else 0) << 6,
            _NONE if b.deadline is None else b.deadline,
            b.target,
            b.business,
            _NONE if b.first_warning is None else b.first_warning,
            0,
        )
        for b in briefs
    )


def unpack_briefs(packed: bytes) -> tuple[Brief, ...]:
    """The running clocks of an entry."""
    out = []
    for flags, deadline, target, business, first, _ in _BRIEF.iter_unpack(packed):
        out.append(
            Brief(
                clock=_CLOCKS[flags & 0xF],
                deadline=None if deadline == _NONE else deadline,
                missed=bool(flags >> 4 & 2),
                paused=bool(flags >> 6 & 1),
                target=target,
                business=business,
                first_warning=None if first == _NONE else first,
            )
        )
    return tuple(out)


class Entry:
    """One row of the table: compressed, with what the indexes and lists need."""

    __slots__ = (
        "as_of",
        "briefs",
        "calendar",
        "case_id",
        "closed_at",
        "kind",
        "missed",
        "pair",
        "priority",
        "row",
        "state",
    )

    def __init__(self, row: bytes, doc: dict[str, object], table: StatusTable) -> None:
        self.row = _compress(row)
        self.case_id = str(doc["case_id"])
        self.pair: Pair = table.intern((str(doc["from"]), str(doc["to"])))
        self.kind: str = table.intern(str(doc["kind"]))
        self.priority: str = table.intern(str(doc["priority"]))
        self.state = HandoffState(str(doc["state"]))
        self.as_of = _us(str(doc["as_of"])) or 0
        self.calendar = table.calendar(doc.get("calendar"))
        self.closed_at = _us(doc.get("closed_at"))  # type: ignore[arg-type]
        clocks: list[dict[str, object]] = doc["clocks"]  # type: ignore[assignment]
        self.missed = any(c.get("outcome") == Outcome.MISSED.value for c in clocks)
        briefs = [_brief(c) for c in clocks if c.get("stage") in _RUNNING]
        self.briefs = _pack(briefs) if briefs else b""


def _brief(c: dict[str, object]) -> Brief:
    warnings = [_us(str(w)) for w in c.get("warnings_at") or () if w is not None]  # type: ignore[attr-defined]
    return Brief(
        clock=ClockName(str(c["clock"])),
        deadline=_us(c.get("deadline")),  # type: ignore[arg-type]
        missed=c.get("outcome") == Outcome.MISSED.value,
        paused=c.get("stage") == ClockStage.PAUSED.value,
        target=round(float(c["target_seconds"]) * US),  # type: ignore[arg-type]
        business=round(float(c.get("elapsed_business_seconds") or 0.0) * US),  # type: ignore[arg-type]
        first_warning=min((w for w in warnings if w is not None), default=None),
    )


class Timeline:
    """(instant, id) pairs in (instant, id) order, in buckets of one hour: adding and removing
    cost a bisect in one bucket, whatever the size of the table."""

    WIDTH = 3600 * US

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[list[int], list[str]]] = {}
        self._keys: list[int] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, instant: int, handoff_id: str) -> None:
        """Insert a pair."""
        key = instant // self.WIDTH
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = ([], [])
            bisect.insort(self._keys, key)
        instants, ids = bucket
        i = bisect.bisect_left(instants, instant)
        while i < len(instants) and instants[i] == instant and ids[i] < handoff_id:
            i += 1
        instants.insert(i, instant)
        ids.insert(i, handoff_id)
        self._size += 1

    def remove(self, instant: int, handoff_id: str) -> None:
        """Remove a pair (it must be there)."""
        key = instant // self.WIDTH
        instants, ids = self._buckets[key]
        i = bisect.bisect_left(instants, instant)
        while ids[i] != handoff_id:
            i += 1
        del instants[i]
        del ids[i]
        self._size -= 1
        if not instants:
            del self._buckets[key]
            del self._keys[bisect.bisect_left(self._keys, key)]

    def ascending(self, start: int | None = None) -> Iterator[tuple[int, str]]:
        """Pairs from `start` (inclusive) onwards, earliest first."""
        first = 0 if start is None else bisect.bisect_left(self._keys, start // self.WIDTH)
        for key in self._keys[first:]:
            instants, ids = self._buckets[key]
            lo = 0 if start is None else bisect.bisect_left(instants, start)
            yield from zip(instants[lo:], ids[lo:], strict=True)

    def descending(self, before: tuple[int, str] | None = None) -> Iterator[tuple[int, str]]:
        """Pairs before `before` (exclusive, in (instant, id) order), latest first."""
        keys = self._keys
        last = len(keys) if before is None else bisect.bisect_right(keys, before[0] // self.WIDTH)
        for key in reversed(keys[:last]):
            instants, ids = self._buckets[key]
            hi = len(instants)
            if before is not None and key == before[0] // self.WIDTH:
                hi = bisect.bisect_left(instants, before[0])
                while hi < len(instants) and instants[hi] == before[0] and ids[hi] < before[1]:
                    hi += 1
            for i in range(hi - 1, -1, -1):
                yield instants[i], ids[i]


class StatusTable:
    """Every handoff's status row, indexed for the API's queries."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.by_case: dict[str, list[str]] = {}
        self.active = Timeline()
        """Open handoffs by their earliest running deadline (no deadline: last)."""
        self.active_by_pair: dict[Pair, set[str]] = {}
        self.warned = Timeline()
        """Handoffs with a running clock, by the instant its first warning is reached."""
        self.closed = Timeline()
        self.closed_by_pair: dict[Pair, Timeline] = {}
        self._interned: dict[object, object] = {}
        self._calendars: dict[str, BusinessCalendar] = {}
        self.unreadable = 0

    def __len__(self) -> int:
        return len(self.entries)

    def intern(self, value: T) -> T:
        """One shared object per distinct label (a million rows share a few hundred)."""
        return self._interned.setdefault(value, value)  # type: ignore[return-value]

    def calendar(self, spec: object) -> BusinessCalendar | None:
        """The calendar of a row (one BusinessCalendar per distinct spec)."""
        if not isinstance(spec, dict):
            return None
        key = json.dumps(spec, sort_keys=True)
        found = self._calendars.get(key)
        if found is None:
            found = self._calendars[key] = calendar_for(CalendarV1.model_validate(spec))
        return found

    # ------------------------------------------------------------------ writing

    def put(self, key: bytes, value: bytes | None) -> None:
        """TableReader callback: one row (None: the handoff was forgotten)."""
        handoff_id = key.decode(errors="replace")
        self._drop(handoff_id)
        if value is None:
            return
        try:
            entry = Entry(value, json.loads(value), self)
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1  # not a row sla wrote: nothing to answer from it
            return
        self.entries[handoff_id] = entry
        self.by_case.setdefault(entry.case_id, []).append(handoff_id)
        if entry.state in OPEN_STATES:
            briefs = unpack_briefs(entry.briefs)
            self.active.add(urgency(briefs), handoff_id)
            self.active_by_pair.setdefault(entry.pair, set()).add(handoff_id)
            first = _first_warning(briefs)
            if first is not None:
                self.warned.add(first, handoff_id)
        if entry.closed_at is not None:
            self.closed.add(entry.closed_at, handoff_id)
            self.closed_by_pair.setdefault(entry.pair, Timeline()).add(entry.closed_at, handoff_id)

    def _drop(self, handoff_id: str) -> None:
        entry = self.entries.pop(handoff_id, None)
        if entry is None:
            return
        ids = self.by_case[entry.case_id]
        ids.remove(handoff_id)
        if not ids:
            del self.by_case[entry.case_id]
        if entry.state in OPEN_STATES:
            briefs = unpack_briefs(entry.briefs)
            self.active.remove(urgency(briefs), handoff_id)
            pair = self.active_by_pair[entry.pair]
            pair.discard(handoff_id)
            if not pair:
                del self.active_by_pair[entry.pair]
            first = _first_warning(briefs)
            if first is not None:
                self.warned.remove(first, handoff_id)
        if entry.closed_at is not None:
            self.closed.remove(entry.closed_at, handoff_id)
            by_pair = self.closed_by_pair[entry.pair]
            by_pair.remove(entry.closed_at, handoff_id)
            if not by_pair:
                del self.closed_by_pair[entry.pair]

    # ------------------------------------------------------------------ reading

    def row(self, handoff_id: str) -> HandoffStatusV1 | None:
        """A handoff's row, decoded."""
        entry = self.entries.get(handoff_id)
        if entry is None:
            return None
        return HandoffStatusV1.model_validate_json(_decompress(entry.row))

    def case(self, case_id: str) -> list[tuple[str, HandoffStatusV1]]:
        """The rows of a case's handoffs."""
        out = []
        for handoff_id in self.by_case.get(case_id, ()):
            row = self.row(handoff_id)
            if row is not None:
                out.append((handoff_id, row))
        return out


def _first_warning(briefs: tuple[Brief, ...]) -> int | None:
    return min((b.first_warning for b in briefs if b.first_warning is not None), default=None)
