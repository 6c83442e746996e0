"""The handoff event log for process mining, written as CSV, XES (IEEE 1849) and OCEL 2.0 JSON.

Pure: chunks of events in, chunks of text out, so a log of any size is written without ever
being held whole. The log's notion of a case is Baton's case (the correlation id); each
lifecycle event is one event whose activity is its lifecycle name (`submitted`, `accepted`,
...), whose resource is the team that acted: the supplier for `expected`, `submitted`,
`reprioritized` and `cancelled`, the receiving team (internal customer) for the others.
OCEL adds the handoffs, cases and teams as objects (a handoff belongs to its case, and links
its supplier and its customer).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

SUPPLIER_ACTS = frozenset({"expected", "submitted", "reprioritized", "cancelled"})
LIFECYCLE_NAMES = (
    "expected",
    "submitted",
    "accepted",
    "completed",
    "rejected",
    "paused",
    "resumed",
    "reprioritized",
    "cancelled",
    "rated",
)


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One lifecycle event of the log, with its case and handoff facts."""

    case_id: str
    handoff_id: str
    event_id: str
    type: str
    at: datetime
    from_process: str | None
    to_process: str | None
    kind: str | None
    priority: str | None
    route_id: str | None
    standard_version: int | None
    actor: str | None
    reason: str | None
    note: str | None
    rating: int | None
    comment: str | None

    @property
    def team(self) -> str | None:
        """The team that acted."""
        return self.from_process if self.type in SUPPLIER_ACTS else self.to_process


@dataclass(frozen=True, slots=True)
class LogObject:
    """A handoff of the log with its case and teams (OCEL objects)."""

    handoff_id: str
    case_id: str
    from_process: str | None
    to_process: str | None
    kind: str | None
    route_id: str | None
    standard_version: int | None


def timestamp(at: datetime) -> str:
    """An instant as the exports write it: ISO 8601, UTC, microseconds."""
    return at.isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- CSV

CSV_HEADER = (
    "case_id",
    "handoff_id",
    "event_id",
    "activity",
    "timestamp",
    "team",
    "from",
    "to",
    "kind",
    "priority",
    "route_id",
    "standard_version",
    "actor",
    "reason",
    "note",
    "rating",
    "comment",
)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def csv_chunks(chunks: Iterable[list[LogEvent]]) -> Iterator[str]:
    """The log as CSV (RFC 4180, header first), one piece per chunk of events."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    for events in chunks:
        buffer.seek(0)
        buffer.truncate()
        for e in events:
            writer.writerow(
                [
                    e.case_id,
                    e.handoff_id,
                    e.event_id,
                    e.type,
                    timestamp(e.at),
                    _text(e.team),
                    _text(e.from_process),
                    _text(e.to_process),
                    _text(e.kind),
                    _text(e.priority),
                    _text(e.route_id),
                    _text(e.standard_version),
                    _text(e.actor),
                    _text(e.reason),
                    _text(e.note),
                    _text(e.rating),
                    _text(e.comment),
                ]
            )
        yield buffer.getvalue()


# --------------------------------------------------------------------------- XES

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(value: object) -> str:
    """Text fit for an XML attribute value: escaped, characters XML 1.0 forbids removed."""
    return escape(_NOT_XML.sub("", str(value)), {'"': "&quot;"})


XES_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <extension name="Identity" prefix="identity" uri="http://www.xes-standard.org/identity.xesext"/>
  <global scope="trace">
    <string key="concept:name" value="__INVALID__"/>
  </global>
  <global scope="event">
    <string key="concept:name" value="__INVALID__"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <classifier name="Activity by team" keys="concept:name org:group"/>
  <string key="concept:name" value="Baton handoffs"/>
"""


def _xes_event(e: LogEvent) -> str:
    attrs = [
        f'      <string key="concept:name" value="{_xml(e.type)}"/>',
        f'      <date key="time:timestamp" value="{timestamp(e.at)}"/>',
        f'      <id key="identity:id" value="{_xml(e.event_id)}"/>',
        f'      <string key="handoff" value="{_xml(e.handoff_id)}"/>',
    ]
    team = e.team
    if team is not None:
        attrs.append(f'      <string key="org:resource" value="{_xml(team)}"/>')
        attrs.append(f'      <string key="org:group" value="{_xml(team)}"/>')
    for key, value in (
        ("from", e.from_process),
        ("to", e.to_process),
        ("kind", e.kind),
        ("priority", e.priority),
        ("route", e.route_id),
        ("actor", e.actor),
        ("reason", e.reason),
        ("note", e.note),
        ("comment", e.comment),
    ):
        if value is not None:
            attrs.append(f'      <string key="{key}" value="{_xml(value)}"/>')
    if e.standard_version is not None:
        attrs.append(f'      <int key="standard_version" value="{e.standard_version}"/>')
    if e.rating is not None:
        attrs.append(f'      <int key="rating" value="{e.rating}"/>')
    return "    <event>\n" + "\n".join(attrs) + "\n    </event>\n"


def xes_chunks(chunks: Iterable[list[LogEvent]]) -> Iterator[str]:
    """The log as XES: one trace per case (the events must come ordered by case, then time)."""
    yield XES_HEAD
    case: str | None = None
    for events in chunks:
        parts: list[str] = []
        for e in events:
            if e.case_id != case:
                if case is not None:
                    parts.append("  </trace>\n")
                case = e.case_id
                parts.append(f'  <trace>\n    <string key="concept:name" value="{_xml(case)}"/>\n')
            parts.append(_xes_event(e))
        yield "".join(parts)
    yield ("  </trace>\n" if case is not None else "") + "</log>\n"


# --------------------------------------------------------------------------- OCEL 2.0

_EVENT_ATTRIBUTES = (
    ("team", "string"),
    ("priority", "string"),
    ("actor", "string"),
    ("reason", "string"),
    ("note", "string"),
    ("rating", "integer"),
    ("comment", "string"),
)
_HANDOFF_ATTRIBUTES = (
    ("kind", "string"),
    ("route", "string"),
    ("standard_version", "integer"),
)
_EPOCH = "1970-01-01T00:00:00Z"


def ocel_id(object_type: str, value: str) -> str:
    """The OCEL object id of a case, handoff or team (typed: ids never collide)."""
    return f"{object_type}:{value}"


def _ocel_object(o: LogObject) -> list[dict[str, object]]:
    relationships = [{"objectId": ocel_id("case", o.case_id), "qualifier": "part of"}]
    if o.from_process is not None:
        relationships.append({"objectId": ocel_id("team", o.from_process), "qualifier": "supplier"})
    if o.to_process is not None:
        relationships.append({"objectId": ocel_id("team", o.to_process), "qualifier": "customer"})
    attributes = [
        {"name": name, "time": _EPOCH, "value": value}
        for name, value in (
            ("kind", o.kind),
            ("route", o.route_id),
            ("standard_version", o.standard_version),
        )
        if value is not None
    ]
    return [
        {
            "id": ocel_id("handoff", o.handoff_id),
            "type": "handoff",
            "attributes": attributes,
            "relationships": relationships,
        }
    ]


def _ocel_event(e: LogEvent) -> dict[str, object]:
    relationships = [
        {"objectId": ocel_id("handoff", e.handoff_id), "qualifier": "handoff"},
        {"objectId": ocel_id("case", e.case_id), "qualifier": "case"},
    ]
    team = e.team
    if team is not None:
        relationships.append({"objectId": ocel_id("team", team), "qualifier": "by"})
    attributes = [
        {"name": name, "value": value}
        for name, value in (
            ("team", team),
            ("priority", e.priority),
            ("actor", e.actor),
            ("reason", e.reason),
            ("note", e.note),
            ("rating", e.rating),
            ("comment", e.comment),
        )
        if value is not None
    ]
    return {
        "id": e.event_id,
        "type": e.type,
        "time": timestamp(e.at),
        "attributes": attributes,
        "relationships": relationships,
    }


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def ocel_chunks(
    objects: Iterable[list[LogObject]], events: Iterable[list[LogEvent]]
) -> Iterator[str]:
    """The log as OCEL 2.0 JSON: object and event types, then objects (handoffs, their cases
    and teams, each once), then events. Objects come first from their own pass over the store,
    so neither list is held whole."""
    head = {
        "objectTypes": [
            {"name": "case", "attributes": []},
            {
                "name": "handoff",
                "attributes": [{"name": n, "type": t} for n, t in _HANDOFF_ATTRIBUTES],
            },
            {"name": "team", "attributes": []},
        ],
        "eventTypes": [
            {"name": name, "attributes": [{"name": n, "type": t} for n, t in _EVENT_ATTRIBUTES]}
            for name in LIFECYCLE_NAMES
        ],
    }
    yield _dump(head)[:-1] + ',"objects":['
    first = True
    cases: set[str] = set()
    teams: set[str] = set()
    for chunk in objects:
        parts = []
        for o in chunk:
            found = _ocel_object(o)
            if o.case_id not in cases:
                # Cases and teams are few next to events; remembering their ids is what makes
                # each appear once while handoffs stream by.
                cases.add(o.case_id)
                found.append({"id": ocel_id("case", o.case_id), "type": "case", "attributes": []})
            for team in (o.from_process, o.to_process):
                if team is not None and team not in teams:
                    teams.add(team)
                    found.append({"id": ocel_id("team", team), "type": "team", "attributes": []})
            for item in found:
                parts.append(("" if first else ",") + _dump(item))
                first = False
        yield "".join(parts)
    yield '],"events":['
    first = True
    for batch in events:
        texts = []
        for e in batch:
            texts.append(("" if first else ",") + _dump(_ocel_event(e)))
            first = False
        yield "".join(texts)
    yield "]}\n"
