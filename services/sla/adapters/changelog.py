"""The sla changelog: its record format (one compacted record per handoff, one per standard,
one for the partition's stream time) and the restore that reads such records back.

Compact binary for handoffs (restore speed is bounded by decoding), JSON for the few standard
records. The derivable fields kept are the next wake-ups: deriving them means evaluating every
clock of every handoff, which would multiply the restore time. Standard records and the
stream-time record use keys starting with '#', which no handoff id can (ids start with a letter
or digit), so they never collide in the topic.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterable

import orjson

from shared.contracts import ClockName, Priority, ServiceStandardV1
from shared.events import Outcome
from shared.exactly_once import Record
from sla.domain.book import Book
from sla.domain.handoff import Handoff, Head, Mark

log = logging.getLogger(__name__)

STANDARD_PREFIX = b"#std:"
STREAM_KEY = b"#stream"
"""The partition's stream time (8 bytes, little-endian microseconds)."""
_OUTCOMES = {None: 0, Outcome.MET: 1, Outcome.MISSED: 2}
_OUTCOME_OF = {v: k for k, v in _OUTCOMES.items()}
_CLOCKS = {c: i for i, c in enumerate(ClockName)}
_CLOCK_OF = list(ClockName)
_PRIORITY = {p.value: p for p in Priority}


def standard_record(standard: ServiceStandardV1, key: str) -> tuple[bytes, bytes]:
    """(key, value) of a standard's changelog record."""
    return STANDARD_PREFIX + key.encode(), standard.model_dump_json(by_alias=True).encode()


def stream_record(stream_time: int) -> tuple[bytes, bytes]:
    """(key, value) of the partition's stream-time record."""
    return STREAM_KEY, _TIME.pack(stream_time)


def is_standard(key: bytes) -> bool:
    """True for a standard's record key."""
    return key.startswith(STANDARD_PREFIX)


def decode_standard(key: bytes, value: bytes) -> tuple[str, ServiceStandardV1]:
    """(key, standard) back from its record."""
    return key[len(STANDARD_PREFIX) :].decode(), ServiceStandardV1.model_validate_json(value)


# Handoff record: header (format, wall wake, stream wake, learned at, closed seen at, head
# length, marks length, waiting length), the head as one string
# "kind|from|to|standard|case|priority|due" (\x1f-separated), the marks as JSON when any, the
# events an orphan keeps (offset, length, record value; only while no opening event came),
# then the packed facts as they are. Restore speed is bounded by decoding: no JSON, no base64
# and no per-field objects on the common path -- a handoff with no marks decodes with two
# slices. Formats 1 (wall wake only) and 2 (no waiting events) are still read.
_HEADER_V1 = struct.Struct("<BqHI")
_HEADER_V2 = struct.Struct("<BqqqqHI")
_HEADER = struct.Struct("<BqqqqHII")
_WAKES = struct.Struct("<Bqq")
"""The head of formats 2 and 3: format, wall wake, stream wake (all a restore reads)."""
_WAKES_V1 = struct.Struct("<Bq")
_WAITING = struct.Struct("<qI")
_TIME = struct.Struct("<q")
_FORMAT = 3
_SEP = "\x1f"
_NONE = -1


def _encode_waiting(waiting: list[tuple[int, bytes]] | None) -> bytes:
    if not waiting:
        return b""
    return b"".join(_WAITING.pack(offset, len(value)) + value for offset, value in waiting)


def _decode_waiting(blob: bytes) -> list[tuple[int, bytes]] | None:
    if not blob:
        return None
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(blob):
        at, length = _WAITING.unpack_from(blob, offset)
        offset += _WAITING.size
        out.append((at, blob[offset : offset + length]))
        offset += length
    return out


def encode(handoff: Handoff) -> bytes:
    """A handoff's record value (an unread one's is the record it was restored from: nothing
    changes a handoff before it is read)."""
    if handoff.unread is not None:
        return handoff.unread
    head = handoff.head
    text = ""
    if head is not None:
        due = "" if handoff.due is None else str(handoff.due)
        text = _SEP.join(
            (
                head.kind,
                head.from_process,
                head.to_process,
                head.standard_key,
                handoff.case_id,
                handoff.priority.value,
                due,
            )
        )
    head_bytes = text.encode()
    marks = b""
    if handoff.marks:
        marks = json.dumps(
            [
                [
                    cycle_key,
                    _CLOCKS[clock],
                    _OUTCOMES[m.outcome],
                    m.revision,
                    m.warned,
                    int(m.stopped),
                    None if m.basis is None else [m.basis[0], m.basis[1].value, *m.basis[2:]],
                ]
                for (cycle_key, clock), m in handoff.marks.items()
            ],
            separators=(",", ":"),
        ).encode()
    waiting = _encode_waiting(handoff.waiting)
    header = _HEADER.pack(
        _FORMAT,
        _NONE if handoff.wake is None else handoff.wake,
        _NONE if handoff.stream_wake is None else handoff.stream_wake,
        _NONE if handoff.seen is None else handoff.seen,
        _NONE if handoff.closed_seen is None else handoff.closed_seen,
        len(head_bytes),
        len(marks),
        len(waiting),
    )
    return b"".join((header, head_bytes, marks, waiting, handoff.packed))


def _header(value: bytes) -> tuple[int, int, int, int, int, int, int, int]:
    """(header size, wake, stream wake, learned at, closed seen at, head, marks and waiting
    lengths) of a handoff record, -1 for what it does not hold; ValueError if it is no record
    of a known format or shorter than its header says."""
    version = value[0] if value else None
    stream_wake = seen = closed_seen = _NONE
    waiting_len = 0
    if version == _FORMAT:
        _, wake, stream_wake, seen, closed_seen, head_len, marks_len, waiting_len = (
            _HEADER.unpack_from(value)
        )
        size = _HEADER.size
    elif version == 2:
        _, wake, stream_wake, seen, closed_seen, head_len, marks_len = _HEADER_V2.unpack_from(value)
        size = _HEADER_V2.size
    elif version == 1:
        _, wake, head_len, marks_len = _HEADER_V1.unpack_from(value)
        size = _HEADER_V1.size
    else:
        raise ValueError(f"unknown sla changelog record format {version}")
    if (needed := size + head_len + marks_len + waiting_len) > len(value):
        raise ValueError(f"truncated: {len(value)} bytes, its header says at least {needed}")
    return size, wake, stream_wake, seen, closed_seen, head_len, marks_len, waiting_len


def unread(handoff_id: str, value: bytes) -> Handoff:
    """A handoff from its record with only its wake-ups read (`read` does the rest on its
    first use, and finds a truncated record then); ValueError if it is no handoff record of a
    known format."""
    try:
        version = value[0]
        if 2 <= version <= _FORMAT:
            _, wake, stream_wake = _WAKES.unpack_from(value)
        elif version == 1:
            _, wake = _WAKES_V1.unpack_from(value)
            stream_wake = _NONE
        else:
            raise ValueError(f"unknown sla changelog record format {version}")
    except (IndexError, struct.error) as exc:
        raise ValueError(f"sla changelog record header unreadable ({exc})") from exc
    return Handoff.unread_record(
        handoff_id,
        value,
        None if wake == _NONE else wake,
        None if stream_wake == _NONE else stream_wake,
    )


def read(book: Book, handoff: Handoff) -> None:
    """Read an unread handoff's record (the book calls this on its first use); heads are
    interned by `book`, so the million handoffs of a partition share one Head per route.
    ValueError naming what is wrong if the record cannot be read."""
    value = handoff.unread
    assert value is not None
    try:
        _read(book, handoff, value)
    except Exception as exc:  # whatever a record that is no record of ours raises
        raise ValueError(f"sla changelog record unreadable: {exc}") from exc


def _read(book: Book, handoff: Handoff, value: bytes) -> None:
    offset, _, _, seen, closed_seen, head_len, marks_len, waiting_len = _header(value)
    head: Head | None = None
    case_id, priority, due = "", Priority.P3, None
    if head_len:
        kind, frm, to, std, case_id, text, when = (
            value[offset : offset + head_len].decode().split(_SEP)
        )
        head = book.head(kind, frm, to, std)
        priority = _PRIORITY[text]
        due = int(when) if when else None
    offset += head_len
    marks = None
    if marks_len:
        marks = {
            (cycle_key, _CLOCK_OF[clock]): Mark(
                outcome=_OUTCOME_OF[outcome],
                revision=revision,
                warned=warned,
                stopped=bool(stopped),
                basis=None if basis is None else (basis[0], Priority(basis[1]), basis[2], basis[3]),
            )
            for cycle_key, clock, outcome, revision, warned, stopped, basis in orjson.loads(
                value[offset : offset + marks_len]
            )
        }
    offset += marks_len
    handoff.read_back(
        head=head,
        case_id=case_id,
        priority=priority,
        due=due,
        packed=value[offset + waiting_len :],
        marks=marks,
        seen=None if seen == _NONE else book.time(seen),
        closed_seen=None if closed_seen == _NONE else book.time(closed_seen),
        waiting=_decode_waiting(value[offset : offset + waiting_len]),
    )


def decode(handoff_id: str, value: bytes, book: Book) -> Handoff:
    """A handoff back from its record, read at once."""
    handoff = unread(handoff_id, value)
    read(book, handoff)
    return handoff


def load(book: Book, records: Iterable[Record]) -> int:
    """Apply changelog records (in offset order) to a partition's book; returns how many were
    unreadable. One unreadable record must not keep the whole partition down: that handoff is
    lost (its later events wait as an orphan), loudly.

    A handoff's record is checked and its wake-ups taken from its header here; the rest is
    read on the handoff's first use (`read`, by the book), so a restore costs little more
    than reading the changelog. A record whose header is sound but whose body is not is found
    then, and reported by the book the same way (`Book.unreadable`)."""
    book.reader = read
    handoffs = book.handoffs
    unreadable = 0
    for record in records:
        key = record.key or b""
        value = record.value
        try:
            if key.startswith(b"#"):
                if key == STREAM_KEY and value is not None:
                    book.advance_stream(_TIME.unpack(value)[0])
                elif is_standard(key) and value is not None:
                    std_key, standard = decode_standard(key, value)
                    book.learn(standard, std_key)
                continue
            handoff_id = key.decode()
            if value is None:
                handoffs.pop(handoff_id, None)
            else:
                handoffs[handoff_id] = unread(handoff_id, value)
        except Exception as exc:
            unreadable += 1
            log.error(
                "changelog record %r at %s/%d unreadable (%s); skipped",
                key,
                record.partition,
                record.offset,
                exc,
            )
    return unreadable
