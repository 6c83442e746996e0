"""A typed client of Baton's four services, over HTTP.

Its types are the services' own: answers are parsed into the response models the services
build them from (intake.api.schemas, sla.api.schemas, routing.api.schemas) and the shared
contracts (shared.contracts, shared.events), and posted events may be the models intake
validates them against (intake.domain.posted). Every 4xx/5xx answer is a problem+json body
(shared.http.Problem), raised as `BatonError` with the field-by-field reasons.

Each endpoint is one method that names its service, path and answer type, so a new
endpoint is one method. A 503 or 429 with Retry-After (nothing was done) and a connection
that was never made are retried, `retries` times; every post carries event ids or an
Idempotency-Key, so a retry never duplicates anything.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Literal, TypeVar, cast
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from intake.api.schemas import Accepted, EventAccepted, RejectionDetail, RejectionList, Replayed
from routing.api.schemas import MapSummary, MapVersions, Reloaded
from shared.contracts import Priority, ProcessMapV1
from shared.events import Outcome
from shared.problem import FieldError, Problem
from sla.api.schemas import CaseOut, ClosedList, HandoffList, HandoffOut, View

T = TypeVar("T")

DEV_KEY = "baton-dev-key-not-for-production"
"""The development key every service takes under `make run` (deploy/run.sh)."""

MAX_BATCH = 1000
"""Events per POST /v1/events that intake takes by default (INTAKE_MAX_BATCH; a unit test
holds the two equal: intake's settings are not imported, they bring FastAPI along)."""
MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest request body intake takes by default (INTAKE_MAX_BODY_BYTES; likewise)."""
MAX_KEY_LENGTH = 200
"""Intake's limit on an Idempotency-Key."""
_MAX_WAIT_S = 30.0


class Service(StrEnum):
    """Baton's services, each at its own URL."""

    INTAKE = "intake"
    ROUTING = "routing"
    SLA = "sla"
    METRICS = "metrics"


@dataclass(frozen=True)
class Urls:
    """Where each service answers; the defaults are `make run`'s."""

    intake: str = "http://127.0.0.1:8001"
    routing: str = "http://127.0.0.1:8002"
    sla: str = "http://127.0.0.1:8003"
    metrics: str = "http://127.0.0.1:8004"

    def of(self, service: Service) -> str:
        """The base URL of one service."""
        url: str = getattr(self, service.value)
        return url.rstrip("/")


class BatonError(Exception):
    """A service answered with an error: its problem+json body, field by field."""

    def __init__(self, service: Service, method: str, path: str, problem: Problem) -> None:
        super().__init__(f"{service} {method} {path}: {problem.status} {problem.title}")
        self.service = service
        self.method = method
        self.path = path
        self.problem = problem

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self.problem.status


class Unreachable(Exception):
    """A service could not be reached (or its answer was not Baton's)."""

    def __init__(self, service: Service, url: str, reason: str) -> None:
        super().__init__(f"{service} at {url}: {reason}")
        self.service = service
        self.url = url
        self.reason = reason


Event = Mapping[str, Any] | BaseModel
"""An event to post: Baton's JSON as a mapping, or a model (e.g. intake.domain.posted's)."""

_PROBLEM = TypeAdapter(Problem)


def _jsonable(event: Event) -> Any:
    if isinstance(event, BaseModel):
        return event.model_dump(mode="json", by_alias=True, exclude_none=True)
    return event


CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
"""The media type of a batch of CloudEvents 1.0 (a JSON array), which POST /v1/events takes."""


def encode_batch(events: Sequence[Event], *, cloudevents: bool = False) -> bytes:
    """The body of POST /v1/events for these events: Baton's `{"events": [...]}`, or with
    `cloudevents` the JSON array of a CloudEvents batch (deterministic: a retry sends the same
    bytes, which an Idempotency-Key requires)."""
    items = [_jsonable(e) for e in events]
    return orjson.dumps(items if cloudevents else {"events": items}, option=orjson.OPT_SORT_KEYS)


def batches(
    events: Sequence[Event],
    size: int = MAX_BATCH,
    max_bytes: int = MAX_BODY_BYTES,
    *,
    cloudevents: bool = False,
) -> list[Sequence[Event]]:
    """The events cut, in order, into batches of at most `size` events and `max_bytes` of
    body (an event larger than the body limit alone goes in a batch of its own, for intake to
    refuse with its reason)."""
    if size < 1:
        raise ValueError("a batch holds at least one event")
    out: list[Sequence[Event]] = []
    start, length = 0, 0
    overhead = len(encode_batch([], cloudevents=cloudevents))
    for index, event in enumerate(events):
        item = len(orjson.dumps(_jsonable(event))) + 1
        full = index - start >= size or (index > start and overhead + length + item > max_bytes)
        if full:
            out.append(events[start:index])
            start, length = index, 0
        length += item
    if start < len(events):
        out.append(events[start:])
    return out


def batch_key(prefix: str | None, index: int, count: int, body: bytes) -> str:
    """The Idempotency-Key of batch `index` (0-based) of `count`: `prefix` for a single batch,
    `prefix-<n>` for batch n of several; without a prefix, derived from the body, so posting the
    same file again is a retry that duplicates nothing."""
    if prefix is None:
        return "baton-" + hashlib.sha256(body).hexdigest()[:40]
    key = prefix if count == 1 else f"{prefix}-{index + 1}"
    if not prefix.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters; {key!r} is not")
    return key


class BatchRefused(Exception):
    """Batch `batch` (1-based) of `post_batches` was refused; the ones before it were
    accepted (`accepted`). `first` is the input position of the batch's first event."""

    def __init__(
        self,
        error: BatonError,
        batch: int,
        batches: int,
        first: int,
        accepted: list[EventAccepted],
    ) -> None:
        super().__init__(f"batch {batch} of {batches} refused: {error}")
        self.error = error
        self.batch = batch
        self.batches = batches
        self.first = first
        self.accepted = accepted

    def fields(self) -> list[FieldError]:
        """The problem's field errors with `events[i]` counted from the start of the input."""

        def shifted(match: re.Match[str]) -> str:
            return f"{match.group(1)}[{int(match.group(2)) + self.first}]"

        return [
            FieldError(field=_EVENT_INDEX.sub(shifted, e.field, count=1), reason=e.reason)
            for e in self.error.problem.errors
        ]


_EVENT_INDEX = re.compile(r"^(events|)\[(\d+)\]")
"""Where a batch's problem names an event: `events[i]` (Baton's JSON), `[i]` (CloudEvents)."""


class Posted(BaseModel):
    """What a post of many events, in batches, was answered."""

    batches: int
    accepted: int
    events: list[EventAccepted]


def _problem_of(response: httpx.Response) -> Problem:
    """The problem+json body of an error answer, or one made from what came back instead."""
    try:
        return _PROBLEM.validate_json(response.content)
    except ValidationError:
        detail = response.text.strip()[:500] or None
        title = response.reason_phrase or "Error"
        return Problem(title=title, status=response.status_code, detail=detail)


def _segment(value: str) -> str:
    """A path segment: ids with '/', '#' or '?' travel percent-encoded."""
    return quote(value, safe="")


class Client:
    """Baton's API, one method per endpoint, answers typed by the services' own models."""

    def __init__(
        self,
        urls: Urls | None = None,
        key: str | None = DEV_KEY,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.urls = urls or Urls()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(headers=headers, timeout=timeout, transport=transport)
        self._retries = retries
        self._sleep = sleep

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------- plumbing

    def _send(
        self,
        service: Service,
        method: Literal["GET", "POST"],
        path: str,
        *,
        params: Mapping[str, str | int | bool | None] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request, retried while the service says to retry later or cannot be reached."""
        url = self.urls.of(service) + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(self._retries + 1):
            try:
                response = self._http.request(
                    method, url, params=query, content=content, headers=headers
                )
            except httpx.ConnectError as exc:
                if attempt == self._retries:
                    raise Unreachable(service, url, str(exc) or "connection refused") from None
                self._sleep(min(2.0**attempt, _MAX_WAIT_S))
                continue
            except httpx.HTTPError as exc:
                raise Unreachable(service, url, f"{type(exc).__name__}: {exc}") from None
            wait = response.headers.get("retry-after", "")
            later = response.status_code in (429, 503) and wait.isdigit()
            if not later or attempt == self._retries:
                break
            self._sleep(min(float(wait), _MAX_WAIT_S))
        if response.status_code >= 400:
            raise BatonError(service, method, path, _problem_of(response))
        return response

    def _call(
        self,
        answer: type[T] | TypeAdapter[T],
        service: Service,
        method: Literal["GET", "POST"],
        path: str,
        **request: Any,
    ) -> T:
        """A request whose JSON answer is parsed into the service's model."""
        response = self._send(service, method, path, **request)
        adapter = answer if isinstance(answer, TypeAdapter) else TypeAdapter(answer)
        try:
            return adapter.validate_json(response.content)
        except ValidationError as exc:
            url = self.urls.of(service) + path
            raise Unreachable(service, url, f"an answer that is not Baton's: {exc}") from None

    # ----------------------------------------------------------------------- health

    def ready(self, service: Service) -> dict[str, Any]:
        """GET /health/ready of one service: its readiness checks (503 is an answer here)."""
        url = self.urls.of(service) + "/health/ready"
        try:
            response = self._http.get(url)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unreachable(service, url, str(exc) or type(exc).__name__) from None
        return cast(dict[str, Any], body)

    # ----------------------------------------------------------------------- intake

    def post_events(
        self,
        events: Sequence[Event],
        idempotency_key: str | None = None,
        *,
        cloudevents: bool = False,
    ) -> Accepted:
        """POST /v1/events: one batch, all accepted or none; with `cloudevents`, the events
        are CloudEvents 1.0 (`type` baton.handoff.<event>, `subject` the handoff id, ...),
        posted in batch mode."""
        body = encode_batch(events, cloudevents=cloudevents)
        headers = {"Content-Type": CLOUDEVENTS_BATCH if cloudevents else "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return self._call(
            Accepted, Service.INTAKE, "POST", "/v1/events", content=body, headers=headers
        )

    def post_batches(
        self,
        events: Sequence[Event],
        *,
        key_prefix: str | None = None,
        size: int = MAX_BATCH,
        max_bytes: int = MAX_BODY_BYTES,
        done: Callable[[int], None] | None = None,
        cloudevents: bool = False,
    ) -> Posted:
        """Post any number of events in batches (`batches`), each with its Idempotency-Key
        (`batch_key`), in order; `done(n)` after each batch of n events. A refused batch
        raises BatchRefused, the batches before it accepted (posting the same events again
        retries them, duplicating nothing). `cloudevents`: the events are CloudEvents."""
        chunks = batches(events, size, max_bytes, cloudevents=cloudevents)
        accepted: list[EventAccepted] = []
        first = 0
        for index, chunk in enumerate(chunks):
            body = encode_batch(chunk, cloudevents=cloudevents)
            key = batch_key(key_prefix, index, len(chunks), body)
            try:
                accepted.extend(self.post_events(chunk, key, cloudevents=cloudevents).events)
            except BatonError as exc:
                raise BatchRefused(exc, index + 1, len(chunks), first, accepted) from None
            first += len(chunk)
            if done is not None:
                done(len(chunk))
        return Posted(batches=len(chunks), accepted=len(accepted), events=accepted)

    def rejections(
        self,
        *,
        handoff_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
        service: str | None = None,
        case_id: str | None = None,
        replayed: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> RejectionList:
        """GET /v1/rejections: events accepted at the door and refused downstream."""
        params = {
            "handoff_id": handoff_id,
            "source": source,
            "reason": reason,
            "service": service,
            "case_id": case_id,
            "replayed": replayed,
            "offset": offset,
            "limit": limit,
        }
        return self._call(RejectionList, Service.INTAKE, "GET", "/v1/rejections", params=params)

    def rejection(self, rejection_id: str) -> RejectionDetail:
        """GET /v1/rejections/{id}: one rejection with the event as it was refused."""
        path = f"/v1/rejections/{_segment(rejection_id)}"
        return self._call(RejectionDetail, Service.INTAKE, "GET", path)

    def replay(self, rejection_id: str, *, force: bool = False) -> Replayed:
        """POST /v1/rejections/{id}/replay: post a refused event again, with its own id."""
        path = f"/v1/rejections/{_segment(rejection_id)}/replay"
        params = {"force": True} if force else None
        return self._call(Replayed, Service.INTAKE, "POST", path, params=params)

    # ----------------------------------------------------------------------- sla

    def status(self, handoff_id: str) -> HandoffOut:
        """GET /v1/handoffs/{id}: every clock of every cycle, and the event history."""
        return self._call(HandoffOut, Service.SLA, "GET", f"/v1/handoffs/{_segment(handoff_id)}")

    def handoffs(
        self,
        view: View = "open",
        *,
        from_process: str | None = None,
        to_process: str | None = None,
        kind: str | None = None,
        priority: Priority | None = None,
        limit: int = 100,
    ) -> HandoffList:
        """GET /v1/handoffs: the open, at-risk or overdue list, most urgent first."""
        params = {
            "view": view,
            "from": from_process,
            "to": to_process,
            "kind": kind,
            "priority": priority.value if priority else None,
            "limit": limit,
        }
        return self._call(HandoffList, Service.SLA, "GET", "/v1/handoffs", params=params)

    def closed(
        self,
        *,
        from_process: str | None = None,
        to_process: str | None = None,
        kind: str | None = None,
        priority: Priority | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: Outcome | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> ClosedList:
        """GET /v1/closed: one page of completed and cancelled handoffs, latest first (pass
        the answer's `next` as `cursor` for the next page)."""
        params = {
            "from": from_process,
            "to": to_process,
            "kind": kind,
            "priority": priority.value if priority else None,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "outcome": outcome.value if outcome else None,
            "cursor": cursor,
            "limit": limit,
        }
        return self._call(ClosedList, Service.SLA, "GET", "/v1/closed", params=params)

    def case(self, case_id: str) -> CaseOut:
        """GET /v1/cases/{id}: who held the case how long, what was late, ping-pong."""
        return self._call(CaseOut, Service.SLA, "GET", f"/v1/cases/{_segment(case_id)}")

    # ----------------------------------------------------------------------- routing

    def process_map(self) -> ProcessMapV1:
        """GET /v1/map: the process map in force."""
        return self._call(ProcessMapV1, Service.ROUTING, "GET", "/v1/map")

    def validate_map(self, text: str) -> MapSummary:
        """POST /v1/map/validate: check a map (YAML text) against the one in force."""
        return self._call(
            MapSummary,
            Service.ROUTING,
            "POST",
            "/v1/map/validate",
            content=text.encode(),
            headers={"Content-Type": "application/yaml"},
        )

    def reload_map(self, *, revision: str | None = None, author: str | None = None) -> Reloaded:
        """POST /v1/map/reload: routing reads its map file again and puts it in force."""
        params = {"revision": revision, "author": author}
        return self._call(Reloaded, Service.ROUTING, "POST", "/v1/map/reload", params=params)

    def map_versions(self) -> MapVersions:
        """GET /v1/map/versions: every published version, newest first."""
        return self._call(MapVersions, Service.ROUTING, "GET", "/v1/map/versions")
