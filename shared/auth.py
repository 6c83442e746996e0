"""API keys on every service: who is calling, what the key may do, and how fast.

Each service reads its keys from `<SERVICE>_API_KEYS` (`INTAKE_API_KEYS`, `ROUTING_API_KEYS`,
`SLA_API_KEYS`, `METRICS_API_KEYS`), a JSON list in one format:

    [{"name": "erp", "key_sha256": "<hex>", "processes": ["sales"]},
     {"name": "grafana", "key": "<dev key>", "scopes": ["read"]},
     {"name": "ops", "key_sha256": "<hex>", "processes": ["*"], "admin": true}]

Scopes:
- `events:write` -- post lifecycle events for handoffs whose supplier or receiver is one of the
  key's `processes` ("*" = any process);
- `read` -- the query APIs (status, lists, cases, the map, rejections, reports);
- `admin` -- map validation and reload, replays of rejected events, contact details.
Without `scopes`, a key has what the first, intake-only format gave it: `admin: true` is every
scope, any other key writes for its processes and reads. Keys are matched by SHA-256, so plain
keys need never be stored. Per-key rate limits answer 429 with Retry-After (a token bucket).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.clock import Clock
from shared.http import ProblemError


class Scope(StrEnum):
    """What a key may do."""

    WRITE = "events:write"
    READ = "read"
    ADMIN = "admin"


class RateLimit(BaseModel):
    """A token bucket: `per_second` requests on average, bursts of up to `burst`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=10_000_000)


class ApiKey(BaseModel):
    """One caller's key: its secret (plain for development, or its SHA-256), scope, limit."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    key: str | None = Field(None, min_length=16, description="the key itself (dev only)")
    key_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="hex SHA-256")
    processes: list[str] = Field(
        default_factory=lambda: ["*"], description='processes it may post for ("*" = all)'
    )
    admin: bool = False
    scopes: list[Scope] | None = Field(
        None, description="default: every scope with admin, else events:write and read"
    )
    rate_limit: RateLimit | None = Field(None, description="overrides the service default")

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKey:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError(f"API key {self.name!r}: give exactly one of key / key_sha256")
        return self

    def digest(self) -> str:
        """The hex SHA-256 the key is matched by."""
        if self.key_sha256 is not None:
            return self.key_sha256
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).hexdigest()

    def effective_scopes(self) -> frozenset[Scope]:
        """The scopes the key has (explicit, or what the first format implied)."""
        if self.scopes is not None:
            return frozenset(self.scopes) | ({Scope.ADMIN} if self.admin else set())
        if self.admin:
            return frozenset(Scope)
        return frozenset({Scope.WRITE, Scope.READ})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as its key says."""

    name: str
    processes: frozenset[str]
    scopes: frozenset[Scope]

    @property
    def admin(self) -> bool:
        """True for keys with the admin scope."""
        return Scope.ADMIN in self.scopes

    @property
    def all_processes(self) -> bool:
        """True when the key may write for any process."""
        return "*" in self.processes

    def may_write_for(self, *processes: str | None) -> bool:
        """True when the key may post events for a handoff between these processes."""
        if Scope.WRITE not in self.scopes:
            return False
        return self.all_processes or any(p in self.processes for p in processes if p)


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class TooManyRequests(ProblemError):
    status = 429
    title = "Too many requests"


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class KeyRing:
    """The keys of one service, by digest, with one token bucket per key."""

    def __init__(self, keys: list[ApiKey], clock: Clock, default_limit: RateLimit | None) -> None:
        self._clock = clock
        self._by_digest: dict[str, tuple[Caller, RateLimit | None]] = {}
        for key in keys:
            caller = Caller(key.name, frozenset(key.processes), key.effective_scopes())
            self._by_digest[key.digest()] = (caller, key.rate_limit or default_limit)
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, presented: str) -> tuple[Caller, RateLimit | None] | None:
        """The caller a presented key belongs to, and its rate limit; None if unknown."""
        return self._by_digest.get(hashlib.sha256(presented.encode()).hexdigest())

    def take(self, caller: Caller, limit: RateLimit | None) -> float:
        """Spend one request of the caller's budget: 0 if allowed, else seconds to wait."""
        if limit is None:
            return 0.0
        now = self._clock.now().timestamp()
        bucket = self._buckets.get(caller.name)
        if bucket is None:
            bucket = self._buckets[caller.name] = _Bucket(float(limit.burst), now)
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.per_second)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / limit.per_second


_bearer = HTTPBearer(
    auto_error=False,
    description="an API key from the service's <SERVICE>_API_KEYS: `Authorization: Bearer <key>`",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="baton"'}


def caller_of(request: Request, scope: Scope | None = None) -> Caller:
    """The caller named by `Authorization: Bearer <key>` (401 otherwise; 429 over its limit;
    403 without `scope`). A plain function, for hot endpoints that skip FastAPI's dependency
    machinery; `authenticate` and `require` are the same check as dependencies."""
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    kind, _, token = header.partition(" ")
    token = token.strip()
    if kind.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <key>'", headers=_CHALLENGE)
    ring: KeyRing = request.app.state.keyring
    found = ring.lookup(token)
    if found is None:
        raise Unauthorized("unknown API key", headers=_CHALLENGE)
    caller, limit = found
    wait = ring.take(caller, limit)
    if wait > 0:
        assert limit is not None
        raise TooManyRequests(
            f"key {caller.name!r} is limited to {limit.per_second:g} requests/s "
            f"(bursts of {limit.burst}); retry after the Retry-After delay",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    if scope is not None and scope not in caller.scopes:
        raise Forbidden(f"key {caller.name!r} lacks the {scope.value!r} scope")
    request.state.caller = caller
    return caller


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller named by `Authorization: Bearer <key>` (401 otherwise; 429 over its limit).
    `credentials` is declared so that the OpenAPI documents the bearer scheme."""
    return caller_of(request)


SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
"""The OpenAPI security requirement of an operation that calls `caller_of` itself."""


def require(scope: Scope) -> Any:
    """A dependency that authenticates and insists on one scope (403 without it)."""

    async def dependency(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if scope not in caller.scopes:
            raise Forbidden(f"key {caller.name!r} lacks the {scope.value!r} scope")
        return caller

    return Depends(dependency)


Reader = Annotated[Caller, require(Scope.READ)]
"""A caller with the read scope."""
Writer = Annotated[Caller, require(Scope.WRITE)]
"""A caller with the events:write scope (per-process checks are the use case's)."""
Admin = Annotated[Caller, require(Scope.ADMIN)]
"""A caller with the admin scope."""


def keyring_for(keys: list[ApiKey], clock: Clock, default_limit: RateLimit | None) -> KeyRing:
    """The key ring of a service; refuses to start a service nobody could call."""
    if not keys:
        raise ValueError(
            "no API keys: set <SERVICE>_API_KEYS (e.g. SLA_API_KEYS) to a JSON list of keys"
        )
    return KeyRing(keys, clock, default_limit)
