"""The sla changelog's record format: one compacted record per handoff, one per standard.

Compact JSON with short keys: restore speed is bounded by decoding, so no field is written
that can be derived. Standard records use keys starting with '#', which no handoff id can
(ids start with a letter or digit), so the two never collide in the compacted topic.
"""

from __future__ import annotations

import json
from typing import Any

from shared.contracts import ClockName, Priority, ServiceStandardV1
from shared.events import Outcome
from sla.domain.book import standard_key
from sla.domain.facts import Fact, FactType
from sla.domain.handoff import Handoff, Head, Mark

STANDARD_PREFIX = b"#std:"
_OUTCOMES = {None: 0, Outcome.MET: 1, Outcome.MISSED: 2}
_OUTCOME_OF = {v: k for k, v in _OUTCOMES.items()}
_CLOCKS = {c: i for i, c in enumerate(ClockName)}
_CLOCK_OF = list(ClockName)


def standard_record(standard: ServiceStandardV1) -> tuple[bytes, bytes]:
    """(key, value) of a standard's changelog record."""
    key = STANDARD_PREFIX + standard_key(standard).encode()
    return key, standard.model_dump_json(by_alias=True).encode()


def is_standard(key: bytes) -> bool:
    """True for a standard's record key."""
    return key.startswith(STANDARD_PREFIX)


def decode_standard(value: bytes) -> ServiceStandardV1:
    """A standard back from its record."""
    return ServiceStandardV1.model_validate_json(value)


def encode(handoff: Handoff) -> bytes:
    """A handoff's record value."""
    doc: dict[str, Any] = {"f": [[f.at, int(f.type), f.event_id, f.value] for f in handoff.facts]}
    head = handoff.head
    if head is not None:
        doc["h"] = [
            head.case_id,
            head.kind,
            head.from_process,
            head.to_process,
            head.priority.value,
            head.standard_key,
            head.due,
            list(head.opened_by),
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
    if handoff.opened:
        doc["o"] = list(handoff.opened)
    if handoff.wake is not None:
        doc["w"] = handoff.wake
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(handoff_id: str, value: bytes, interned: dict[str, str]) -> Handoff:
    """A handoff back from its record; `interned` shares repeated strings (process ids,
    kinds, standard keys) between the million handoffs of a partition."""
    doc = json.loads(value)
    handoff = Handoff(handoff_id)
    handoff.facts = [Fact(at, FactType(t), eid, v) for at, t, eid, v in doc["f"]]
    h = doc.get("h")
    if h is not None:
        intern = interned.setdefault
        handoff.head = Head(
            case_id=h[0],
            kind=intern(h[1], h[1]),
            from_process=intern(h[2], h[2]),
            to_process=intern(h[3], h[3]),
            priority=Priority(h[4]),
            standard_key=intern(h[5], h[5]),
            due=h[6],
            opened_by=(h[7][0], h[7][1], h[7][2]),
        )
    for cycle_key, clock, outcome, revision, warned, stopped, basis in doc.get("m", ()):
        handoff.marks[(cycle_key, _CLOCK_OF[clock])] = Mark(
            outcome=_OUTCOME_OF[outcome],
            revision=revision,
            warned=warned,
            stopped=bool(stopped),
            basis=None if basis is None else (basis[0], Priority(basis[1]), basis[2], basis[3]),
        )
    handoff.opened = tuple(doc.get("o", ()))
    handoff.wake = doc.get("w")
    return handoff
