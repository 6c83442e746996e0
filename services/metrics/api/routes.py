"""metrics' HTTP API: the Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE

from metrics.adapters.exposition import Exposition

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4, or OpenMetrics 1.0 (with exemplars "
            "carrying handoff ids) when the Accept header asks for application/openmetrics-text",
            "content": {CONTENT_TYPE_LATEST: {}, OPENMETRICS_TYPE: {}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """Every metric of Baton's handoffs, in the format the scraper asked for."""
    exposition: Exposition = request.app.state.exposition
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        return Response(exposition.render(openmetrics=True), media_type=OPENMETRICS_TYPE)
    return Response(exposition.render(openmetrics=False), media_type=CONTENT_TYPE_LATEST)
