"""Versioned standards: an edit makes a new version; a running handoff keeps the one it started
with (the routed event carries the whole standard, so nothing downstream has to look it up). Pure.

A route's standard is compared with the one last published under the same route id, version
aside: unchanged keeps its version, changed gets previous + 1, a new route id starts at 1.
The map's own version moves only when something in it changed, so a restart with the same
file publishes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from routing.domain.processmap import ProcessMapDraft
from shared.contracts import (
    CalendarV1,
    MapChangesV1,
    ProcessMapV1,
    ProcessV1,
    RouteSpecV1,
    ServiceStandardV1,
)


class Change(StrEnum):
    """What happened to a route's standard between the published map and a new one."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class StandardVersion:
    """The version a route's standard gets in the new map, and why."""

    route_id: str
    change: Change
    version: int
    previous_version: int | None


@dataclass(frozen=True)
class Versioned:
    """The map to apply and whether it must be published (False: the previous one stands)."""

    map: ProcessMapV1
    publish: bool
    standards: tuple[StandardVersion, ...]
    removed_routes: tuple[str, ...]

    def changes(self) -> MapChangesV1:
        """How many routes are new, changed, unchanged and removed."""
        counts = Counter(s.change for s in self.standards)
        return MapChangesV1(
            new=counts[Change.NEW],
            changed=counts[Change.CHANGED],
            unchanged=counts[Change.UNCHANGED],
            removed=len(self.removed_routes),
        )


def standard_content(standard: ServiceStandardV1) -> dict[str, Any]:
    """What a standard says, without its version: the thing an edit changes."""
    return standard.model_dump(mode="json", exclude={"version"})


def version_standards(
    draft: ProcessMapDraft, previous: ProcessMapV1 | None
) -> tuple[tuple[RouteSpecV1, ...], tuple[StandardVersion, ...]]:
    """The draft's routes with their standards versioned against the previous map."""
    before = {r.id: r.standard for r in previous.routes} if previous is not None else {}
    routes: list[RouteSpecV1] = []
    versions: list[StandardVersion] = []
    for route in draft.routes:
        old = before.get(route.id)
        if old is None:
            change, version = Change.NEW, 1
        elif standard_content(old) == standard_content(route.standard):
            change, version = Change.UNCHANGED, old.version
        else:
            change, version = Change.CHANGED, old.version + 1
        standard = route.standard.model_copy(update={"version": version})
        routes.append(route.model_copy(update={"standard": standard}))
        versions.append(
            StandardVersion(route.id, change, version, old.version if old is not None else None)
        )
    return tuple(routes), tuple(versions)


def _content(
    calendars: Sequence[CalendarV1],
    processes: Sequence[ProcessV1],
    groups: Mapping[str, Sequence[str]],
    routes: Sequence[RouteSpecV1],
) -> list[Any]:
    """Everything a published map says except its own version, time, source and author."""
    return [
        [c.model_dump(mode="json") for c in calendars],
        [p.model_dump(mode="json") for p in processes],
        {g: list(members) for g, members in groups.items()},
        [r.model_dump(mode="json", by_alias=True) for r in routes],
    ]


def next_map(
    draft: ProcessMapDraft,
    previous: ProcessMapV1 | None,
    *,
    now: datetime,
    source: str,
    revision: str = "",
    author: str = "",
    holidays_version: str | None = None,
) -> Versioned:
    """The map to apply given the last published one: versions assigned, publish if changed
    (the source, revision and author alone change nothing).

    `holidays_version` is the python-holidays data the calendars' public holidays come from:
    new data moves real deadlines, so a change of it publishes a new map version too.
    """
    routes, versions = version_standards(draft, previous)
    kept = {r.id for r in draft.routes}
    removed = tuple(r.id for r in previous.routes if r.id not in kept) if previous else ()
    if (
        previous is not None
        and previous.holidays_version == holidays_version
        and _content(draft.calendars, draft.processes, draft.groups, routes)
        == _content(previous.calendars, previous.processes, previous.groups, previous.routes)
    ):
        return Versioned(previous, False, versions, removed)
    pmap = ProcessMapV1(
        version=previous.version + 1 if previous is not None else 1,
        published_at=now,
        source=source,
        revision=revision,
        author=author,
        holidays_version=holidays_version,
        calendars=draft.calendars,
        processes=draft.processes,
        groups=draft.groups,
        routes=routes,
    )
    return Versioned(pmap, True, versions, removed)
