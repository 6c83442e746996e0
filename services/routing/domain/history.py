"""The history of every route: each version of its standard (and of where it goes), which map
version put it in force, who published that, and which one replaced or removed it. Pure.

Built from the published versions themselves (every version stays on the map topic), read
oldest first; a route's era ends when a later map changes anything in it (its standard --
which then has a new version -- or its from, to, kind or `when`) or leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.contracts import MapManifestV1


@dataclass
class RouteEra:
    """One version of a route as it was in force, from one map version until another."""

    route_id: str
    route: Mapping[str, Any]
    """The route as published (JSON: from, kind, to, when, standard with its version)."""
    since: MapManifestV1
    """The map version that put it in force: when, by whom, from which source and revision."""
    until: int | None = None
    """The map version that replaced or removed it; None while in force."""
    ended: str | None = None
    """"changed" or "removed" once it is no longer in force."""

    @property
    def standard_version(self) -> int:
        """The version of the route's standard in this era."""
        version: int = self.route["standard"]["version"]
        return version


class RouteHistory:
    """Every era of every route, fed one published map version at a time, oldest first."""

    def __init__(self) -> None:
        self.eras: dict[str, list[RouteEra]] = {}
        self.latest = 0
        self._open: dict[str, RouteEra] = {}

    def add(self, manifest: MapManifestV1, routes: Iterable[Mapping[str, Any]]) -> None:
        """The routes of the next map version (as JSON); older versions are ignored."""
        if manifest.version <= self.latest:
            return
        present: set[str] = set()
        for route in routes:
            route_id = str(route["id"])
            present.add(route_id)
            era = self._open.get(route_id)
            if era is not None and era.route == route:
                continue
            if era is not None:
                era.until, era.ended = manifest.version, "changed"
            opened = RouteEra(route_id, route, manifest)
            self.eras.setdefault(route_id, []).append(opened)
            self._open[route_id] = opened
        for route_id in [r for r in self._open if r not in present]:
            era = self._open.pop(route_id)
            era.until, era.ended = manifest.version, "removed"
        self.latest = manifest.version

    def of(self, route_id: str) -> list[RouteEra]:
        """A route's eras, oldest first (empty if no published version had it)."""
        return list(self.eras.get(route_id, ()))
