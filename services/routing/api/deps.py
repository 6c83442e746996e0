"""Request dependencies: the map queries, the catalog in force, the outbox, the clock."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from routing.domain.catalog import Catalog
from routing.queries import MapQueries, OutboxQueries
from shared.clock import Clock
from shared.http import Unavailable


class MapNotInForce(Unavailable):
    """503: the map is not versioned and published yet (Kafka not reached)."""

    title = "Process map not in force yet"


def queries(request: Request) -> MapQueries:
    """What the API reads the map through."""
    found: MapQueries = request.app.state.queries
    return found


def catalog(request: Request) -> Catalog:
    """The catalog of the map in force; 503 until routing has versioned and published it."""
    found = queries(request).catalog
    if found is None:
        raise MapNotInForce(
            "routing is still putting the process map in force (waiting for Kafka)",
            headers={"Retry-After": "2"},
        )
    return found


def outbox(request: Request) -> OutboxQueries:
    """What the API reads the notification outbox through."""
    found: OutboxQueries = request.app.state.outbox
    return found


def clock(request: Request) -> Clock:
    """The app's clock."""
    value: Clock = request.app.state.clock
    return value


QueriesDep = Annotated[MapQueries, Depends(queries)]
CatalogDep = Annotated[Catalog, Depends(catalog)]
ClockDep = Annotated[Clock, Depends(clock)]
OutboxDep = Annotated[OutboxQueries, Depends(outbox)]
