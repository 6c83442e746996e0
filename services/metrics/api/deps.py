"""Request dependencies: the report queries, the clock, the settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from metrics.queries import ReportQueries
from metrics.settings import Settings
from shared.clock import Clock


def queries(request: Request) -> ReportQueries:
    """What the report API reads the history through."""
    found: ReportQueries = request.app.state.queries
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
