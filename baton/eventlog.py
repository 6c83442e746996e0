"""Event logs read from files: CSV, and XES (IEEE 1849), plain or gzipped.

A `Mapping` names the column (CSV) or attribute key (XES) of each role: the case, the
timestamp, the team (or resource) that handled the event, the activity and, optionally, a
priority. A role left unset takes the first of its candidates the log has: XES's standard
keys (`case:concept:name`, `time:timestamp`, `org:group` then `org:resource`,
`concept:name`), the same names in a CSV export, and the columns of the BPI Challenge 2013
VINST export (`SR Number`, `Change Date+Time`, `Involved ST`, `Activity`, `SR Latest Impact`).
Timestamps are ISO 8601; one without a UTC offset is read in `Mapping.timezone`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from baton.derive import LogEvent


class LogFormat(StrEnum):
    """How a log is written; `auto` goes by the file name."""

    AUTO = "auto"
    CSV = "csv"
    XES = "xes"


class LogError(ValueError):
    """The log cannot be read with this mapping: the message says where and why."""


CANDIDATES: dict[str, tuple[str, ...]] = {
    "case": ("case:concept:name", "case_id", "case", "Case ID", "SR Number"),
    "timestamp": ("time:timestamp", "timestamp", "Timestamp", "Change Date+Time"),
    "team": ("org:group", "Involved ST", "team", "org:resource", "resource", "Resource"),
    "activity": ("concept:name", "activity", "Activity"),
    "priority": ("priority", "Priority", "SR Latest Impact", "impact", "Impact"),
}
"""Per role, the names tried in order when the mapping leaves it unset."""
_REQUIRED = ("case", "timestamp", "team")


@dataclass(frozen=True)
class Mapping:
    """Which column or attribute key holds each role (None: the first candidate present)."""

    case: str | None = None
    timestamp: str | None = None
    team: str | None = None
    activity: str | None = None
    priority: str | None = None
    timezone: str = "UTC"

    def resolved(self, names: Sequence[str], where: str) -> Mapping:
        """The mapping with every role named, from the columns or keys the log has."""
        present = set(names)
        chosen: dict[str, str | None] = {}
        for role, candidates in CANDIDATES.items():
            given: str | None = getattr(self, role)
            if given is not None:
                if given not in present:
                    raise LogError(f"{where}: no column {given!r} for the {role}")
                chosen[role] = given
                continue
            found = next((c for c in candidates if c in present), None)
            if found is None and role in _REQUIRED:
                raise LogError(
                    f"{where}: no column for the {role} (tried {', '.join(candidates)}); "
                    f"name it with --{role}-column"
                )
            chosen[role] = found
        return replace(self, **chosen)  # type: ignore[arg-type]

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise LogError(f"unknown timezone {self.timezone!r}") from None


def parse_time(text: str, zone: ZoneInfo, where: str) -> datetime:
    """An ISO 8601 instant; without an offset, in `zone`."""
    value = text.strip()
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise LogError(f"{where}: not an ISO 8601 timestamp: {text!r}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=zone)


def log_format(path: Path, fmt: LogFormat) -> LogFormat:
    """The format of `path`: as given, or by its name (.xes, .xes.gz: XES; else CSV)."""
    if fmt is not LogFormat.AUTO:
        return fmt
    name = path.name.lower()
    return LogFormat.XES if name.endswith((".xes", ".xes.gz")) else LogFormat.CSV


def _open(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw))  # raw is closed by the GC
    raw.seek(0)
    return raw


def digest(path: Path) -> str:
    """sha256 of the file's bytes as stored (identifies an import for its state file)."""
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_log(
    path: Path, mapping: Mapping, fmt: LogFormat = LogFormat.AUTO
) -> tuple[Mapping, list[LogEvent]]:
    """Every event of the log, in file order, and the mapping it was read with."""
    try:
        with _open(path) as file:
            if log_format(path, fmt) is LogFormat.XES:
                return _read_xes(file, mapping, str(path))
            return _read_csv(file, mapping, str(path))
    except OSError as exc:
        raise LogError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LogError(f"{path}: not UTF-8 text: {exc}") from None


def _read_csv(file: IO[bytes], mapping: Mapping, where: str) -> tuple[Mapping, list[LogEvent]]:
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text.read(8192), ",;\t")
    except csv.Error:
        dialect = csv.excel
    text.seek(0)
    reader = csv.DictReader(text, dialect=dialect)
    m = mapping.resolved(list(reader.fieldnames or ()), where)
    zone = m.zone()
    case, ts, team = m.case or "", m.timestamp or "", m.team or ""
    out: list[LogEvent] = []
    for line, row in enumerate(reader, start=2):
        stamp = row.get(ts) or ""
        if not row.get(case) or not stamp:
            raise LogError(f"{where}:{line}: no {'case' if not row.get(case) else 'timestamp'}")
        out.append(
            LogEvent(
                case=row[case],
                at=parse_time(stamp, zone, f"{where}:{line}"),
                team=(row.get(team) or "").strip(),
                activity=row.get(m.activity or "") or "",
                priority=row.get(m.priority or "") or "",
            )
        )
    return m, out


def _attributes(element: ET.Element) -> dict[str, str]:
    return {
        child.attrib["key"]: child.attrib.get("value", "")
        for child in element
        if "key" in child.attrib
    }


def _xes_traces(
    file: IO[bytes], where: str
) -> Iterator[tuple[dict[str, str], list[dict[str, str]]]]:
    """(trace attributes, event attributes) per trace, streamed (expat: no external
    entities are fetched)."""
    events: list[dict[str, str]] = []
    try:
        for _, element in ET.iterparse(file, events=("end",)):
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "event":
                events.append(_attributes(element))
                element.clear()
            elif tag == "trace":
                yield _attributes(element), events
                events = []
                element.clear()
    except ET.ParseError as exc:
        raise LogError(f"{where}: not XES: {exc}") from None


def _read_xes(file: IO[bytes], mapping: Mapping, where: str) -> tuple[Mapping, list[LogEvent]]:
    out: list[LogEvent] = []
    resolved: Mapping | None = None
    zone: ZoneInfo | None = None
    for number, (trace, events) in enumerate(_xes_traces(file, where), start=1):
        case = trace.get("concept:name", "")
        for event in events:
            # a trace attribute reads as case:<key>, as PM4Py flattens it
            row = {**{f"case:{k}": v for k, v in trace.items()}, **event}
            if resolved is None:
                resolved = mapping.resolved([*row, "case:concept:name"], where)
                zone = resolved.zone()
            place = f"{where}: trace {number}"
            value = row.get(resolved.case or "", case)
            stamp = row.get(resolved.timestamp or "")
            if not value or not stamp:
                raise LogError(f"{place}: an event with no {'case' if not value else 'timestamp'}")
            out.append(
                LogEvent(
                    case=value,
                    at=parse_time(stamp, zone or mapping.zone(), place),
                    team=row.get(resolved.team or "", "").strip(),
                    activity=row.get(resolved.activity or "", ""),
                    priority=row.get(resolved.priority or "", ""),
                )
            )
    if resolved is None:
        raise LogError(f"{where}: no events")
    return resolved, out
