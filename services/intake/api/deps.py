"""Request dependencies: who is calling (API key), and the use cases."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Request

from intake.api.metrics import CALLER_STATE
from intake.domain.events import Caller
from intake.handlers import Intake
from intake.settings import ApiKey
from shared.http import ProblemError


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"


class KeyRing:
    """API keys by SHA-256 digest, so plain keys never need to be kept around."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_digest = {k.digest(): k for k in keys}

    def caller(self, presented: str) -> Caller | None:
        """The caller a presented key belongs to, or None."""
        key = self._by_digest.get(hashlib.sha256(presented.encode()).hexdigest())
        if key is None:
            return None
        return Caller(name=key.name, processes=frozenset(key.processes), admin=key.admin)


async def current_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """The caller named by `Authorization: Bearer <key>`; 401 otherwise."""
    challenge = {"WWW-Authenticate": 'Bearer realm="baton"'}
    if authorization is None:
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'", headers=challenge)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <key>'", headers=challenge)
    ring: KeyRing = request.app.state.keyring
    caller = ring.caller(token.strip())
    if caller is None:
        raise Unauthorized("unknown API key", headers=challenge)
    setattr(request.state, CALLER_STATE, caller.name)  # counted per system (api/metrics.py)
    return caller


async def intake(request: Request) -> Intake:
    """The intake use cases of this app."""
    service: Intake = request.app.state.intake
    return service


CallerDep = Annotated[Caller, Depends(current_caller)]
IntakeDep = Annotated[Intake, Depends(intake)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="makes a retried request safe; needed when events carry no event_id",
    ),
]
