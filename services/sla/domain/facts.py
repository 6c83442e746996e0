"""The facts a handoff's clocks are computed from: lifecycle events reduced to what matters.

Time is integer microseconds since the epoch (UTC) throughout the domain: exact, cheap to
compare and to store. Facts are ordered by event time, never by arrival, with a fixed rank
for events at the same instant and the event id as the last tie-break, so every arrival
order of the same events gives the same sequence -- the root of permutation invariance.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from shared.contracts import Priority


class FactType(IntEnum):
    """Lifecycle event types; the value is the tie-break rank at one instant.

    At the same instant: a delivery precedes its acceptance; a resume precedes a new pause (so
    "resume at t, pause at t" leaves the clock paused); a completion precedes a cancellation.
    """

    EXPECTED = 0
    SUBMITTED = 1
    REPRIORITIZED = 2
    RESUMED = 3
    PAUSED = 4
    ACCEPTED = 5
    REJECTED = 6
    COMPLETED = 7
    CANCELLED = 8
    RATED = 9


FACT_OF_EVENT: dict[str, FactType] = {f"handoff.{t.name.lower()}": t for t in FactType}
PRIORITIES: tuple[Priority, ...] = tuple(Priority)


@dataclass(frozen=True, slots=True, order=True)
class Fact:
    """One lifecycle event: when it happened, what it was, its id, and a small value
    (priority index for reprioritized, rating for rated, else 0)."""

    at: int
    type: FactType
    event_id: str
    value: int = 0

    @property
    def priority(self) -> Priority:
        """The priority a `reprioritized` fact sets."""
        return PRIORITIES[self.value]


# Packed facts: one bytes object per handoff instead of a list of objects -- a million open
# handoffs fit in memory only this way (a Fact object with its int and str costs ~250 bytes,
# its packed record ~50). Record: time (int64), type, value, flags, id length, id bytes.
_RECORD = struct.Struct("<qBBBB")
OPENED = 1
"""Flag on a `submitted` fact: the `opened` decision of the cycle it starts was emitted."""


def pack(records: list[tuple[Fact, int]]) -> bytes:
    """(fact, flags) pairs, already sorted, as one bytes object."""
    out = bytearray()
    for fact, flags in records:
        raw = fact.event_id.encode()
        out += _RECORD.pack(fact.at, fact.type, fact.value, flags, len(raw))
        out += raw
    return bytes(out)


def unpack(blob: bytes) -> list[tuple[Fact, int]]:
    """The (fact, flags) pairs of a packed blob, in order."""
    out: list[tuple[Fact, int]] = []
    offset, size, end = 0, _RECORD.size, len(blob)
    types = _TYPES
    while offset < end:
        at, kind, value, flags, length = _RECORD.unpack_from(blob, offset)
        offset += size
        event_id = blob[offset : offset + length].decode()
        offset += length
        out.append((Fact(at, types[kind], event_id, value), flags))
    return out


_TYPES = list(FactType)
