"""The sla changelog's record format: one compacted record per handoff, one per standard.

Compact JSON with short keys: restore speed is bounded by decoding, so no field is written
that can be derived. Standard records use keys starting with '#', which no handoff id can
(ids start with a letter or digit), so the two never collide in the compacted topic.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from shared.contracts import ClockName, Priority, ServiceStandardV1
from shared.events import Outcome
from sla.domain.book import Book
from sla.domain.handoff import Handoff, Head, Mark, Opening

STANDARD_PREFIX = b"#std:"
_OUTCOMES = {None: 0, Outcome.MET: 1, Outcome.MISSED: 2}
_OUTCOME_OF = {v: k for k, v in _OUTCOMES.items()}
_CLOCKS = {c: i for i, c in enumerate(ClockName)}
_CLOCK_OF = list(ClockName)
_PRIORITY = {p.value: p for p in Priority}


def standard_record(standard: ServiceStandardV1, key: str) -> tuple[bytes, bytes]:
    """(key, value) of a standard's changelog record."""
    return STANDARD_PREFIX + key.encode(), standard.model_dump_json(by_alias=True).encode()


def is_standard(key: bytes) -> bool:
    """True for a standard's record key."""
    return key.startswith(STANDARD_PREFIX)


def decode_standard(key: bytes, value: bytes) -> tuple[str, ServiceStandardV1]:
    """(key, standard) back from its record."""
    return key[len(STANDARD_PREFIX) :].decode(), ServiceStandardV1.model_validate_json(value)


def encode(handoff: Handoff) -> bytes:
    """A handoff's record value."""
    doc: dict[str, Any] = {"f": base64.b64encode(handoff.packed).decode()}
    head = handoff.head
    if head is not None:
        doc["h"] = [
            head.kind,
            head.from_process,
            head.to_process,
            head.standard_key,
            handoff.case_id,
            handoff.priority.value,
            handoff.due,
        ]
    if handoff.marks:
        doc["m"] = [
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
        ]
    if handoff.wake is not None:
        doc["w"] = handoff.wake
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(handoff_id: str, value: bytes, book: Book) -> Handoff:
    """A handoff back from its record; heads are interned by `book`, so the million handoffs
    of a partition share one Head per route."""
    doc = json.loads(value)
    handoff = Handoff(handoff_id)
    h = doc.get("h")
    opening = None
    if h is not None:
        head = book.intern(Head(h[0], h[1], h[2], h[3]))
        opening = Opening(head, h[4], _PRIORITY[h[5]], h[6])
    handoff.restore(base64.b64decode(doc["f"]), opening)
    marks = doc.get("m")
    if marks:
        handoff.marks = {
            (cycle_key, _CLOCK_OF[clock]): Mark(
                outcome=_OUTCOME_OF[outcome],
                revision=revision,
                warned=warned,
                stopped=bool(stopped),
                basis=None if basis is None else (basis[0], Priority(basis[1]), basis[2], basis[3]),
            )
            for cycle_key, clock, outcome, revision, warned, stopped, basis in marks
        }
    handoff.wake = doc.get("w")
    return handoff
