"""The process map as people write it: parse the YAML-shaped dict, check it, collect every error.

Pure: the input is what a YAML loader returned (dicts, lists, scalars); reading files and
parsing YAML text belong to `routing.adapters.mapfile`. The shapes are the shared contracts
(CalendarV1, ProcessV1, RouteSpecV1, ServiceStandardV1); this module adds the file's own
conveniences (ids as keys, the receiver's calendar by default) and the checks that span
objects (references, duplicates, ambiguity). Every error is reported, each with a path.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from routing.domain.chain import chain_errors
from routing.domain.escalation import escalation_errors
from shared.calendar import CalendarError, calendar_for, to_us
from shared.contracts import (
    ANY_PROCESS,
    SLUG_PATTERN,
    WEBHOOK_PATTERN,
    CalendarV1,
    ProcessV1,
    RouteSpecV1,
    ServiceStandardV1,
)
from shared.routes import canonical_when

SECTIONS = ("calendars", "processes", "groups", "routes")
REQUIRED_SECTIONS = ("calendars", "processes", "routes")
CALENDAR_FIELDS = ("timezone", "always_open", "hours", "holidays")
PROCESS_FIELDS = ("name", "calendar", "owner", "escalation", "notify")
ROUTE_FIELDS = ("id", "from", "kind", "to", "when", "standard", "alerting", "next", "escalation")
ALERTING_FIELDS = ("severity", "window")
STANDARD_FIELDS = ("targets", "delivery", "warnings", "objective", "calendar")
_SET_BY_ROUTING = ("version", "route_id")
_KNOWN_WORDS = (
    *SECTIONS,
    *CALENDAR_FIELDS,
    *PROCESS_FIELDS,
    *ROUTE_FIELDS,
    *STANDARD_FIELDS,
    *ALERTING_FIELDS,
    "country",
    "subdivision",
    "dates",
    "email",
    "chat",
    "webhook",
    "secret",
    "levels",
    "response",
    "resolution",
)
_SLUG = re.compile(SLUG_PATTERN)
_SLUG_RULE = "lower-case letters, digits and '-', starting with a letter or digit"
# Stands in for a calendar that could not be resolved, so the rest of a standard is still checked.
_PLACEHOLDER_CALENDAR = CalendarV1(id="placeholder", always_open=True)
_PLACEHOLDER_STANDARD = ServiceStandardV1(
    route_id="placeholder", version=1, calendar=_PLACEHOLDER_CALENDAR, targets={}
)

_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class MapError:
    """One problem in a process map: where (a path like `routes[2].standard`) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class InvalidProcessMap(ValueError):
    """A process map with errors; `errors` lists every one of them."""

    def __init__(self, errors: Sequence[MapError], source: str = "") -> None:
        self.errors = tuple(errors)
        self.source = source
        where = f" {source}" if source else ""
        lines = [f"invalid process map{where}: {len(self.errors)} error(s)"]
        lines.extend(f"  {e}" for e in self.errors)
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ProcessMapDraft:
    """A valid map as loaded, before versioning: every standard still carries version 1."""

    calendars: tuple[CalendarV1, ...]
    processes: tuple[ProcessV1, ...]
    routes: tuple[RouteSpecV1, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)


def parse_process_map(raw: object, *, checked_at: datetime | None = None) -> ProcessMapDraft:
    """Check a loaded YAML document and build the map; raises InvalidProcessMap with every error.

    With `checked_at`, every calendar and every target must also be computable from that
    instant: a calendar without working time for two years, or a target whose deadline would
    fall beyond the years business time is computed for, is an error here rather than an
    event the sla service has to dead-letter later.
    """
    checker = _Checker(checked_at)
    draft = checker.run(raw)
    if checker.errors or draft is None:
        raise InvalidProcessMap(checker.errors)
    return draft


# --------------------------------------------------------------------------- helpers


def _kind_of(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


MAX_SUGGESTIONS = 200
"""Near-miss suggestions computed per check (each one compares the wrong id with every
known id): a map with thousands of broken references still checks in linear time."""


def _known(ids: Sequence[str], wrong: str | None = None) -> str:
    """'(known: a, b, c)' plus a suggestion for a near miss."""
    if not ids:
        return "(none defined)"
    shown = ", ".join(ids[:30]) + (f", ... {len(ids) - 30} more" if len(ids) > 30 else "")
    hint = ""
    if wrong is not None:
        close = difflib.get_close_matches(wrong, ids, n=1, cutoff=0.8)
        if close:
            hint = f"; did you mean {close[0]!r}?"
    return f"(known: {shown}){hint}"


def _unknown_field(name: object, allowed: Sequence[str]) -> str:
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.8)
        elsewhere = difflib.get_close_matches(name, _KNOWN_WORDS, n=1, cutoff=0.8)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        elif elsewhere:
            hint = f"; did you mean {elsewhere[0]!r}? (it is not a field here)"
    return f"unknown field (expected: {', '.join(allowed)}){hint}"


def _join(base: str, loc: Iterable[int | str]) -> str:
    out = base
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _reason(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if pattern == WEBHOOK_PATTERN:
            return f"{error.get('input')!r} is not an http(s) URL"
        return f"{error.get('input')!r} is not an id: use {_SLUG_RULE}"
    return msg


def _errors_of(
    base: str, exc: ValidationError, skip: Sequence[tuple[str, ...]] = ()
) -> list[MapError]:
    """Pydantic errors as path + reason; locations starting with a `skip` prefix are dropped."""
    out: list[MapError] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if any(loc[: len(prefix)] == prefix for prefix in skip):
            continue
        reason = _reason(error)
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            reason = f"invalid key: {reason}"
        if error.get("type") == "extra_forbidden":
            reason = "unknown field"
        out.append(MapError(_join(base, loc), reason))
    return out


def _match_key(body: Mapping[Any, Any]) -> tuple[Any, ...] | None:
    """(from, kind, to, when) of a raw route, or None when they are not plain values."""
    ends = (body.get("from"), body.get("kind"), body.get("to"))
    when = body.get("when") or {}
    if not all(isinstance(v, str) for v in ends) or not isinstance(when, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, str | int | float) for k, v in when.items()):
        return None
    return (*ends, canonical_when(when))


def _percent(value: object) -> object:
    """'95%' -> 0.95, so objectives read the way people write them."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            return value
    return value


# --------------------------------------------------------------------------- the checker


class _Checker:
    """Walks the document once, keeping going after each error so all of them are reported."""

    def __init__(self, checked_at: datetime | None = None) -> None:
        self.checked_at = None if checked_at is None else to_us(checked_at)
        self.errors: list[MapError] = []
        self.calendar_ids: list[str] = []  # declared, valid or not (no cascading errors)
        self.calendars: dict[str, CalendarV1] = {}
        self.process_ids: list[str] = []
        self.processes: dict[str, ProcessV1] = {}
        self.group_ids: list[str] = []
        self.groups: dict[str, tuple[str, ...]] = {}
        self._hints: dict[tuple[int, str], str] = {}
        self._process_set: frozenset[str] = frozenset()
        self._group_set: frozenset[str] = frozenset()
        self.route_paths: dict[str, str] = {}  # route id -> its path, for valid routes
        self.declared: list[tuple[str, str, str]] = []  # (from, kind, to) of every route

    def _known(self, ids: list[str], wrong: str) -> str:
        """`_known` with the suggestion remembered per wrong id, and at most MAX_SUGGESTIONS
        computed (beyond them the list of known ids alone)."""
        key = (id(ids), wrong)
        found = self._hints.get(key)
        if found is None:
            suggest = len(self._hints) < MAX_SUGGESTIONS
            found = self._hints[key] = _known(ids, wrong if suggest else None)
        return found

    @functools.cached_property
    def _origin_ids(self) -> list[str]:
        return [*self.process_ids, *self.group_ids]

    def error(self, path: str, reason: str) -> None:
        """Record one problem and keep going."""
        self.errors.append(MapError(path, reason))

    def run(self, raw: object) -> ProcessMapDraft | None:
        """Check the whole document; the draft is only meaningful when no error was recorded."""
        if not isinstance(raw, Mapping):
            self.error(
                "(map)",
                f"expected a mapping with sections {', '.join(REQUIRED_SECTIONS)}, "
                f"got {_kind_of(raw)}",
            )
            return None
        for key in raw:
            if key in SECTIONS or (isinstance(key, str) and key.startswith("x-")):
                continue
            self.error(
                str(key),
                f"unknown section (expected: {', '.join(SECTIONS)}; "
                "keys starting with 'x-' are free, e.g. for YAML anchors)",
            )
        for section in REQUIRED_SECTIONS:
            if section not in raw:
                self.error(section, "missing section")
        self.check_calendars(raw.get("calendars"))
        self.check_processes(raw.get("processes"))
        self.check_groups(raw.get("groups"))
        routes = self.check_routes(raw.get("routes"))
        self.check_flows(routes)
        return ProcessMapDraft(
            calendars=tuple(self.calendars.values()),
            processes=tuple(self.processes.values()),
            routes=tuple(routes),
            groups=dict(self.groups),
        )

    def _section(self, name: str, value: object, what: str) -> Mapping[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(name, f"expected a mapping of {what}, got {_kind_of(value)}")
            return {}
        return value

    def _id_key(self, section: str, key: object) -> str | None:
        if not isinstance(key, str):
            self.error(f"{section}.{key}", f"an id must be text, got {_kind_of(key)}")
            return None
        if not _SLUG.match(key):
            self.error(f"{section}.{key}", f"{key!r} is not an id: use {_SLUG_RULE}")
        return key

    def _body(self, path: str, key: str, body: object, allowed: Sequence[str]) -> dict[str, Any]:
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            self.error(path, f"expected a mapping ({', '.join(allowed)}), got {_kind_of(body)}")
            return {}
        fields = dict(body)
        given_id = fields.pop("id", key)
        if given_id != key:
            self.error(f"{path}.id", f"the id is the key {key!r} above; leave 'id' out")
        for name in list(fields):
            if name not in allowed:
                self.error(f"{path}.{name}", _unknown_field(name, allowed))
                del fields[name]
        return fields

    # ----------------------------------------------------------------------- calendars

    def check_calendars(self, value: object) -> None:
        """Check `calendars`: id -> CalendarV1 fields."""
        section = self._section("calendars", value, "calendar id -> calendar")
        for key, body in section.items():
            cid = self._id_key("calendars", key)
            if cid is None:
                continue
            self.calendar_ids.append(cid)
            path = f"calendars.{cid}"
            fields = self._body(path, cid, body, CALENDAR_FIELDS)
            hours = fields.get("hours")
            if isinstance(hours, Mapping):
                # "mon-fri: 08:30-12:00, 13:00-17:30" reads better than a YAML list.
                fields["hours"] = {
                    day: [part.strip() for part in spans.split(",")]
                    if isinstance(spans, str)
                    else spans
                    for day, spans in hours.items()
                }
            if isinstance(fields.get("holidays"), str):
                fields["holidays"] = {"country": fields["holidays"]}
            try:
                calendar = CalendarV1.model_validate({**fields, "id": cid})
            except ValidationError as exc:
                self.errors.extend(_errors_of(path, exc, skip=[("id",)]))
                continue
            if self._computable(path, calendar, 1) is None:
                continue
            self.calendars[cid] = calendar

    def _calendar_ref(self, path: str, ref: object) -> bool:
        """True when `ref` names a declared calendar; reports it otherwise."""
        if not isinstance(ref, str):
            self.error(path, f"expected a calendar id, got {_kind_of(ref)}")
            return False
        if ref not in self.calendar_ids:
            self.error(path, f"unknown calendar {ref!r} {self._known(self.calendar_ids, ref)}")
            return False
        return True

    # ----------------------------------------------------------------------- processes

    def check_processes(self, value: object) -> None:
        """Check `processes`: id -> ProcessV1 fields, each naming a known calendar."""
        section = self._section("processes", value, "process id -> process")
        for key, body in section.items():
            pid = self._id_key("processes", key)
            if pid is None:
                continue
            self.process_ids.append(pid)
            path = f"processes.{pid}"
            fields = self._body(path, pid, body, PROCESS_FIELDS)
            if isinstance(fields.get("escalation"), Mapping):
                fields["escalation"] = [fields["escalation"]]
            try:
                process = ProcessV1.model_validate({**fields, "id": pid})
            except ValidationError as exc:
                self.errors.extend(_errors_of(path, exc, skip=[("id",)]))
                continue
            if self._calendar_ref(f"{path}.calendar", process.calendar):
                self.processes[pid] = process

    def _process_ref(self, path: str, ref: object) -> bool:
        if not isinstance(ref, str):
            return False  # the model check reports the type
        if ref not in self._process_set:
            if ref in self._group_set:
                self.error(path, f"{ref!r} is a group: a route goes to one process")
            else:
                self.error(path, f"unknown process {ref!r} {self._known(self.process_ids, ref)}")
            return False
        return True

    def _origin_ref(self, path: str, ref: object) -> bool:
        """A route's `from`: a process, a group or `*` (any process)."""
        if ref == ANY_PROCESS or (isinstance(ref, str) and ref in self._group_set):
            return True
        if isinstance(ref, list | tuple):
            self.error(path, "one process, a group id (see `groups`) or '*'; name a list in groups")
            return False
        if isinstance(ref, str) and ref not in self._process_set:
            known = self._known(self._origin_ids, ref)
            self.error(path, f"unknown process or group {ref!r} {known}; '*' means any process")
            return False
        return self._process_ref(path, ref)

    # ----------------------------------------------------------------------- groups

    def check_groups(self, value: object) -> None:
        """Check `groups`: id -> list of process ids (named once, never a process's id)."""
        self._process_set = frozenset(self.process_ids)
        section = self._section("groups", value, "group id -> list of process ids")
        for key, body in section.items():
            gid = self._id_key("groups", key)
            if gid is None:
                continue
            path = f"groups.{gid}"
            self.group_ids.append(gid)
            if gid in self._process_set:
                self.error(path, f"{gid!r} is a process id too: a group needs an id of its own")
                continue
            if not isinstance(body, list):
                self.error(path, f"expected a list of process ids, got {_kind_of(body)}")
                continue
            if not body:
                self.error(path, "an empty group: list at least one process")
                continue
            members: dict[str, None] = {}
            valid = True
            for index, member in enumerate(body):
                where = f"{path}[{index}]"
                if not isinstance(member, str):
                    self.error(where, f"expected a process id, got {_kind_of(member)}")
                    valid = False
                elif member not in self._process_set:
                    reason = f"unknown process {member!r} {self._known(self.process_ids, member)}"
                    self.error(where, reason)
                    valid = False
                elif member in members:
                    self.error(where, f"{member!r} is listed twice")
                else:
                    members[member] = None
            if valid:
                self.groups[gid] = tuple(members)
        self._group_set = frozenset(self.group_ids)

    # ----------------------------------------------------------------------- routes

    def check_routes(self, value: object) -> list[RouteSpecV1]:
        """Check `routes`, then what spans routes: duplicate ids and ambiguous matches."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.error("routes", f"expected a list of routes, got {_kind_of(value)}")
            return []
        routes: list[RouteSpecV1] = []
        first_by_id: dict[str, str] = {}
        first_by_match: dict[tuple[Any, ...], tuple[str, str]] = {}
        # (kind, to, when) -> member -> the first group route carrying it: two group routes
        # that both apply to one process with the same conditions are as ambiguous as two
        # identical routes.
        by_member: dict[tuple[Any, ...], dict[str, tuple[str, str]]] = {}
        for index, body in enumerate(value):
            path = f"routes[{index}]"
            route = self.check_route(path, body)
            if not isinstance(body, Mapping):
                continue
            # Cross-route checks look at the raw fields, so they are reported even while the
            # route has other errors: one round of fixes, not several.
            route_id = body.get("id")
            if isinstance(route_id, str):
                if route_id in first_by_id:
                    self.error(
                        f"{path}.id",
                        f"duplicate route id {route_id!r} (first at {first_by_id[route_id]})",
                    )
                    continue
                first_by_id[route_id] = path
            match = _match_key(body)
            if match is not None:
                self.declared.append(match[:3])
                if match in first_by_match:
                    other_path, other_id = first_by_match[match]
                    self.error(
                        path,
                        f"same from, kind, to and when as {other_path} ({other_id!r}): "
                        "ambiguous, routing could not tell which standard applies",
                    )
                    continue
                first_by_match[match] = (path, str(route_id))
                if match[0] in self.groups and self._overlaps(
                    path, str(route_id), match, by_member.setdefault(match[1:], {})
                ):
                    continue
            if route is not None:
                routes.append(route)
                self.route_paths[route.id] = path
        return routes

    def check_flows(self, routes: Sequence[RouteSpecV1]) -> None:
        """Check what spans processes and routes: chains (`next`) and escalation steps."""
        located = [(self.route_paths[r.id], r) for r in routes]
        found = chain_errors(located, list(self.processes.values()), self.groups, self.declared)
        found += escalation_errors(self.processes, located)
        self.errors.extend(MapError(path, reason) for path, reason in found)

    def _overlaps(
        self,
        path: str,
        route_id: str,
        match: tuple[Any, ...],
        first: dict[str, tuple[str, str]],
    ) -> bool:
        """Report a group route sharing members with an earlier one of the same kind, receiver
        and conditions; True when it does."""
        group, receiver = match[0], match[2]
        shared: dict[tuple[str, str], list[str]] = {}
        for member in self.groups[group]:
            if member == receiver:
                continue
            other = first.get(member)
            if other is None:
                first[member] = (path, route_id)
            else:
                shared.setdefault(other, []).append(member)
        for (other_path, other_id), members in shared.items():
            shown = ", ".join(members[:5]) + (
                f", ... {len(members) - 5} more" if len(members) > 5 else ""
            )
            self.error(
                f"{path}.from",
                f"group {group!r} shares {shown} with the group of {other_path} ({other_id!r}), "
                "same kind, to and when: ambiguous for those processes; "
                "give them a route of their own or take them out of one group",
            )
        return bool(shared)

    def check_route(self, path: str, body: object) -> RouteSpecV1 | None:
        """Check one route and its standard; None when anything in it is wrong."""
        if not isinstance(body, Mapping):
            self.error(
                path, f"expected a mapping ({', '.join(ROUTE_FIELDS)}), got {_kind_of(body)}"
            )
            return None
        before = len(self.errors)
        fields = dict(body)
        for name in list(fields):
            if name not in ROUTE_FIELDS:
                self.error(f"{path}.{name}", _unknown_field(name, ROUTE_FIELDS))
                del fields[name]
        references_ok = True
        if "from" in fields and not self._origin_ref(f"{path}.from", fields["from"]):
            references_ok = False
            if isinstance(fields["from"], list | tuple):
                fields["from"] = ANY_PROCESS  # reported above; the rest is still checked
        if "to" in fields and not self._process_ref(f"{path}.to", fields["to"]):
            references_ok = False
        origin = fields.get("from")
        if isinstance(origin, str) and origin == fields.get("to"):
            self.error(
                f"{path}.to",
                f"a route hands work to another process, not from {origin!r} to itself",
            )
            references_ok = False
        standard_fields, calendar_ok = self._standard(
            path, fields.get("to"), fields.get("standard")
        )
        standard: ServiceStandardV1 | None = None
        if standard_fields is not None:
            route_id = fields.get("id")
            # route_id repeats the route's id: its errors are reported once, on `id`.
            valid_id = isinstance(route_id, str) and _SLUG.match(route_id)
            standard_fields["route_id"] = route_id if valid_id else "invalid"
            try:
                standard = ServiceStandardV1.model_validate(standard_fields)
            except ValidationError as exc:
                self.errors.extend(_errors_of(f"{path}.standard", exc, skip=[("route_id",)]))
            else:
                self._check_targets(f"{path}.standard", standard)
        if "standard" in fields:
            # Checked above; a stand-in lets the route's own fields be checked in any case.
            fields["standard"] = standard or _PLACEHOLDER_STANDARD
        try:
            route = RouteSpecV1.model_validate(fields)
        except ValidationError as exc:
            self.errors.extend(_errors_of(path, exc, skip=[("standard", "route_id")]))
            return None
        if len(self.errors) > before or not references_ok or not calendar_ok:
            return None
        return route

    def _standard(
        self, path: str, receiver: object, value: object
    ) -> tuple[dict[str, Any] | None, bool]:
        """The standard's fields ready for ServiceStandardV1 (version 1, calendar embedded)."""
        path = f"{path}.standard"
        if value is None:
            return None, False  # the model check reports "required field is missing"
        if not isinstance(value, Mapping):
            self.error(
                path, f"expected a mapping ({', '.join(STANDARD_FIELDS)}), got {_kind_of(value)}"
            )
            return None, False
        fields = dict(value)
        for name in list(fields):
            if name in _SET_BY_ROUTING:
                self.error(f"{path}.{name}", "set by routing when the map is published; leave out")
                del fields[name]
            elif name not in STANDARD_FIELDS:
                self.error(f"{path}.{name}", _unknown_field(name, STANDARD_FIELDS))
                del fields[name]
        calendar: CalendarV1 | None = None
        calendar_ok = True
        if "calendar" in fields:
            ref = fields.pop("calendar")
            if self._calendar_ref(f"{path}.calendar", ref):
                calendar = self.calendars.get(str(ref))
            calendar_ok = calendar is not None
        elif isinstance(receiver, str) and receiver in self.processes:
            calendar = self.calendars.get(self.processes[receiver].calendar)
        else:
            calendar_ok = False  # the receiver is reported already
        if "objective" in fields:
            written = fields["objective"]
            objective = _percent(written)
            reason = None
            if isinstance(written, str) and isinstance(objective, float) and objective >= 1:
                reason = f"{written.strip()} is not a share of handoffs: write at most 99.99%"
            elif isinstance(objective, int | float) and not isinstance(objective, bool):
                if 1 < objective < 100:
                    reason = (
                        f"a share between 0 and 1: write {objective / 100:g} or '{objective:g}%'"
                    )
                elif objective >= 100:
                    reason = "a share between 0 and 1 (e.g. 0.95) or a percentage such as '95%'"
            if reason is not None:
                self.error(f"{path}.objective", reason)
                objective = 0.5  # reported; a stand-in lets the rest be checked
            fields["objective"] = objective
        fields["version"] = 1
        fields["calendar"] = calendar or _PLACEHOLDER_CALENDAR
        return fields, calendar_ok

    def _computable(self, path: str, calendar: CalendarV1, duration_us: int) -> int | None:
        """The deadline of `duration_us` of business time from `checked_at` on `calendar`
        (0 when there is nothing to check); None, with the error recorded, if it cannot be
        computed."""
        if self.checked_at is None or calendar is _PLACEHOLDER_CALENDAR:
            return 0
        try:
            return calendar_for(calendar).add_us(self.checked_at, duration_us)
        except CalendarError as exc:
            self.error(path, f"cannot be computed on calendar {calendar.id!r}: {exc}")
            return None

    def _check_targets(self, path: str, standard: ServiceStandardV1) -> None:
        if not standard.targets:
            self.error(f"{path}.targets", "set targets for at least one priority (P1..P4)")
        for priority, targets in standard.targets.items():
            where = f"{path}.targets.{priority.value}"
            if targets.response is None and targets.resolution is None:
                self.error(where, "set response and/or resolution")
            for name in ("response", "resolution"):
                target = getattr(targets, name)
                if target is not None and not target:
                    self.error(f"{where}.{name}", "must be longer than 0s")
                elif target is not None:
                    self._computable(f"{where}.{name}", standard.calendar, target // _ONE_US)
            if (
                targets.response is not None
                and targets.resolution is not None
                and targets.resolution < targets.response
            ):
                self.error(
                    f"{where}.resolution",
                    "shorter than response: the work cannot be completed before it is accepted",
                )
        if standard.delivery is not None and not standard.delivery:
            self.error(f"{path}.delivery", "must be longer than 0s")
        elif standard.delivery is not None:
            self._computable(f"{path}.delivery", standard.calendar, standard.delivery // _ONE_US)
