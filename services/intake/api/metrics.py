"""`handoff_intake_requests_total{system, code}`: intake's answers per upstream system.

`system` is the name of the API key that called (from INTAKE_API_KEYS, so a bounded set), or
`unauthenticated` when no known key came with the request; `code` is the HTTP status. The
rejections by upstream system alert (BatonIntakeRejections) reads it: a system whose events are
refused never reaches Baton, and nothing downstream would notice.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNAUTHENTICATED = "unauthenticated"
CALLER_STATE = "caller_name"
"""Where the caller dependency leaves the key's name (`request.state`, i.e. scope["state"])."""


def request_counter(registry: CollectorRegistry) -> Counter:
    """The counter, registered in the app's registry."""
    return Counter(
        "handoff_intake_requests",
        "Requests to intake's /v1 API by upstream system (API key name) and HTTP status.",
        ["system", "code"],
        registry=registry,
    )


class RequestMetrics:
    """ASGI middleware counting every /v1 answer (pure ASGI: no per-request task or copy)."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            system = scope.get("state", {}).get(CALLER_STATE, UNAUTHENTICATED)
            self.counter.labels(system, str(status)).inc()
