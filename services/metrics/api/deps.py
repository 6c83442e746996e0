"""Request dependencies: the report queries, the clock, the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from metrics.queries import ReportQueries
from metrics.settings import Settings
from shared.clock import Clock
from shared.http import NotFound


def queries(request: Request) -> ReportQueries:
    """What the report API reads the history through; a 404 on a shard without the store."""
    found: ReportQueries | None = request.app.state.queries
    if found is None:
        settings: Settings = request.app.state.settings
        raise NotFound(
            f"this metrics instance is shard {settings.shard} of {settings.shards}: the report "
            "store, its reports, review pages and exports are served by shard 0"
        )
    return found


def clock(request: Request) -> Clock:
    """The app's clock."""
    value: Clock = request.app.state.clock
    return value


def settings(request: Request) -> Settings:
    """The app's settings."""
    value: Settings = request.app.state.settings
    return value


QueriesDep = Annotated[ReportQueries, Depends(queries)]
ClockDep = Annotated[Clock, Depends(clock)]
SettingsDep = Annotated[Settings, Depends(settings)]
