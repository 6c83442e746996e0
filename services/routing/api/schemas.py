"""routing's response models: the internal-customer register, map validation and reload,
the map's history.

Kept apart from the routes so that the typed client (`baton/client.py`) parses answers into
these very classes without importing the service.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from routing.api import examples
from routing.domain.versioning import Change
from shared.contracts import CalendarV1, MapChangesV1, MapManifestV1, ProcessV1, RouteSpecV1
from shared.openapi import model_examples


class RelationOut(BaseModel):
    """A process at the other end of routes, and those routes with their standards."""

    process: str
    routes: list[RouteSpecV1]


class ProcessDetail(BaseModel):
    """A process with its calendar, direct suppliers and internal customers, and beyond."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.PROCESS))

    process: ProcessV1
    calendar: CalendarV1
    suppliers: list[RelationOut] = Field(description="processes that hand work to this one")
    customers: list[RelationOut] = Field(description="internal customers: who receives its work")
    upstream: list[str] = Field(description="every process whose work reaches this one")
    downstream: list[str] = Field(description="every process that would feel it if this stopped")


class StandardPreview(BaseModel):
    """The version a route's standard would get if this map were put in force."""

    route_id: str
    change: Change
    version: int
    previous_version: int | None


class MapSummary(BaseModel):
    """A valid map: what it holds, and how it compares with the map in force."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.SUMMARY))

    valid: bool = True
    calendars: int
    processes: int
    routes: int
    kinds: list[str]
    compared_with_version: int | None = Field(
        description="version of the map in force the standards were compared with (null: none)"
    )
    standards: list[StandardPreview]
    removed_routes: list[str]


class Reloaded(BaseModel):
    """The map in force after a reload, and what the reload changed."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.RELOADED))

    version: int = Field(description="version of the map in force now")
    published: bool = Field(description="false: the file says what the map in force says")
    source: str
    revision: str
    author: str
    changes: MapChangesV1
    standards: list[StandardPreview] = Field(description="routes whose standard is new or changed")
    removed_routes: list[str]


class RouteVersion(BaseModel):
    """One version of a route as it was in force: its standard and ends, who published it."""

    version: int = Field(description="the version of the route's standard")
    route: dict[str, Any] = Field(
        description="the route as published (from, kind, to, when, standard with its targets)"
    )
    map_version: int = Field(description="the map version that put it in force")
    published_at: str
    source: str
    revision: str
    author: str
    until_map_version: int | None = Field(
        description="the map version that replaced or removed it; null while in force"
    )
    ended: str | None = Field(description="changed | removed | null (in force)")


class RouteVersions(BaseModel):
    """Every version of a route, oldest first."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.ROUTE_VERSIONS))

    route_id: str
    in_force: bool
    versions: list[RouteVersion]


class MapVersions(BaseModel):
    """Every published version of the map, newest first: who, when, from where, what changed."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.VERSIONS))

    in_force: int | None
    versions: list[MapManifestV1]
