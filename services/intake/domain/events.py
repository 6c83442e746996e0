"""Turning what an upstream system posted into envelopes: ids, event time, scope. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from shared.contracts import Identifier, UtcDatetime
from shared.events import Envelope, HandoffOpeningV1, LifecycleName, derived_id

PRODUCER = "intake"


class InvalidEvents(Exception):
    """Some posted events are invalid; `errors` names each field and why."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = list(errors)


class MissingIdempotency(Exception):
    """An event has no event_id and the request no Idempotency-Key: a retry would duplicate."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class OutOfScope(Exception):
    """The caller's key may not post for a process."""

    def __init__(self, field: str, process: str, caller: str) -> None:
        super().__init__(f"key {caller!r} may not post for process {process!r}")
        self.field = field


@dataclass(frozen=True)
class Caller:
    """Who is posting: an upstream system's key and its scope."""

    name: str
    processes: frozenset[str]
    admin: bool = False

    def may_post_for(self, process: str) -> bool:
        """True when the key's scope covers `process`."""
        return "*" in self.processes or process in self.processes


class EventIn(BaseModel):
    """One lifecycle event as posted. `data` is the payload of `type` (see the event models)."""

    model_config = {"extra": "forbid"}

    handoff_id: Identifier | None = None
    type: LifecycleName
    event_id: Identifier | None = Field(
        None, description="your id for this event; retries with the same id are ignored"
    )
    occurred_at: UtcDatetime | None = Field(None, description="event time; default: received")
    case_id: Identifier | None = Field(None, description="the case, when the event knows it")
    data: dict[str, Any] = Field(default_factory=dict)


def fingerprint(body: Any) -> str:
    """A stable hash of a request body, to tell a retry from a reuse of the key."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def build_envelopes(
    items: Sequence[EventIn],
    *,
    caller: Caller,
    idempotency_key: str | None,
    now: datetime,
    max_skew: timedelta,
    paths: Sequence[str],
    flat: bool = False,
) -> list[Envelope]:
    """Validate each posted event and wrap it in an envelope; all or nothing.

    `paths[i]` is how item i is named in error messages ("events[3]"); `flat` says the
    payload fields were posted at the top level of the item (POST /v1/handoffs), not in `data`.
    """
    errors: list[tuple[str, str]] = []
    out: list[Envelope] = []
    for index, (item, path) in enumerate(zip(items, paths, strict=True)):
        prefix = f"{path}." if path else ""
        event_id = item.event_id
        if event_id is None:
            if idempotency_key is None:
                raise MissingIdempotency(f"{prefix}event_id")
            event_id = derived_id(caller.name, idempotency_key, str(index))
        handoff_id = item.handoff_id
        if handoff_id is None:
            if item.type not in ("submitted", "expected"):
                errors.append((f"{prefix}handoff_id", "required for a lifecycle event"))
                continue
            handoff_id = derived_id("handoff", event_id)
        occurred_at = item.occurred_at or now
        if occurred_at - now > max_skew:
            errors.append((f"{prefix}occurred_at", f"{occurred_at.isoformat()} is in the future"))
            continue
        try:
            envelope = Envelope(
                event_id=event_id,
                event_type=f"handoff.{item.type}",
                occurred_at=occurred_at,
                recorded_at=now,
                producer=PRODUCER,
                key=handoff_id,
                correlation_id=item.data.get("case_id", item.case_id),
                data=item.data,
            )
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                if flat and loc[:1] == ["data"]:
                    loc = loc[1:]
                field = f"{prefix}{'.'.join(loc)}"
                errors.append((field, str(err["msg"]).removeprefix("Value error, ")))
            continue
        payload = envelope.payload
        if isinstance(payload, HandoffOpeningV1) and not caller.may_post_for(payload.from_process):
            where = f"{prefix}from" if flat else f"{prefix}data.from"
            raise OutOfScope(where, payload.from_process, caller.name)
        out.append(envelope)
    if errors:
        raise InvalidEvents(errors)
    return out
