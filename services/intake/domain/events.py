"""The door: turn what an upstream system posted into Kafka records, or say precisely why not.

Pure. All or nothing: every posted event is checked before any is written, and a request is
refused whole with every problem named (field path and reason):
- 422 a field is invalid, an event time is outside the calendars' range or in the future, the
  same event id appears twice in the request, or the process map in force cannot route an
  opening event (unknown supplier or receiver, unknown kind, no route for its attributes) --
  each with the known alternatives, because routing would only dead-letter it;
- 403 the caller's key may not write for the handoff's supplier or receiver (every event,
  not only openings: a later event is checked against the handoff it names);
- 413 one event is larger than a Kafka record may be.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from intake.domain.posted import OPENING_TYPES, PostedEvent
from shared.auth import Caller
from shared.events import (
    EncodedEvent,
    HandoffOpeningV1,
    derived_id,
    encode_payload,
    payload_json,
)
from shared.routes import Router, RoutingError

PRODUCER = "intake"

Pair = tuple[str, str]
"""(supplier, receiver) of a handoff."""
_HEADROOM = 2048
"""More than an event's headers can take (ids are at most 200 characters)."""


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
    """The caller's key may not write for the processes of some events."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = list(errors)


class EventTooLarge(Exception):
    """An event is larger than one Kafka record may be: retrying can never succeed."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {r}" for f, r in errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Limits:
    """What the door lets through."""

    max_skew: timedelta
    """How far in the future an event time may be (clocks of the sender drift)."""
    max_event_bytes: int
    """The largest record the producer and the broker take, headers included."""


@dataclass(frozen=True, slots=True)
class Admitted:
    """Posted events that passed the door, encoded, and the handoffs they open."""

    records: list[EncodedEvent]
    opened: dict[str, Pair]


def digest(kind: str, handoff_id: str, occurred_at: datetime | None, data: bytes) -> str:
    """What an upstream system posted, hashed: equal for a retry of the same event, different
    when an event id is reused for other content (checked downstream)."""
    when = b"" if occurred_at is None else occurred_at.isoformat().encode()
    raw = b"\x1f".join((kind.encode(), handoff_id.encode(), when, data))
    return hashlib.sha256(raw).hexdigest()[:32]


def admit(
    items: Sequence[PostedEvent],
    *,
    caller: Caller,
    router: Router,
    pair_of: Callable[[str], Pair | None],
    idempotency_key: str | None,
    now: datetime,
    limits: Limits,
    paths: Sequence[str],
    flat: bool = False,
) -> Admitted:
    """Check every posted event and encode it for the raw topic; raises on the first kind of
    problem found, with every instance of it (see the module docstring).

    `paths[i]` is how item i is named in errors ("events[3]", or "" for a single event);
    `pair_of` says what is known of a handoff opened before this request; `flat` says the
    payload was posted at the top level of the item (POST /v1/handoffs), not in `data`.
    """
    invalid: list[tuple[str, str]] = []
    forbidden: list[tuple[str, str]] = []
    too_large: list[tuple[str, str]] = []
    records: list[EncodedEvent] = []
    opened: dict[str, Pair] = {}
    first_path: dict[str, str] = {}
    scoped = not caller.all_processes
    for index, (item, path) in enumerate(zip(items, paths, strict=True)):
        prefix = f"{path}." if path else ""
        data_prefix = prefix if flat else f"{prefix}data."
        event_id = item.event_id
        if event_id is None:
            if idempotency_key is None:
                raise MissingIdempotency(f"{prefix}event_id")
            event_id = derived_id(caller.name, idempotency_key, str(index))
        elif event_id in first_path:
            invalid.append(
                (
                    f"{prefix}event_id",
                    f"{event_id!r} is also the id of {first_path[event_id] or 'another event'}"
                    ": each event of a request needs its own id",
                )
            )
            continue
        first_path[event_id] = path
        payload = item.data
        handoff_id = item.handoff_id
        if handoff_id is None:
            if item.type not in OPENING_TYPES:
                invalid.append((f"{prefix}handoff_id", "required for a lifecycle event"))
                continue
            handoff_id = derived_id("handoff", event_id)
        occurred_at = item.occurred_at or now
        if occurred_at - now > limits.max_skew:
            invalid.append(
                (
                    f"{prefix}occurred_at",
                    f"{occurred_at.isoformat()} is more than {limits.max_skew} in the future",
                )
            )
            continue
        if isinstance(payload, HandoffOpeningV1):
            try:
                route = router.route_of(payload)
            except RoutingError as exc:
                invalid.append((f"{data_prefix}{exc.field}", exc.message))
                continue
            pair = (payload.from_process, route.to_process)
            if scoped and not caller.may_write_for(*pair):
                forbidden.append(
                    (
                        f"{data_prefix}from",
                        f"key {caller.name!r} may not write for a handoff from {pair[0]!r} "
                        f"to {pair[1]!r} (it may for: {', '.join(sorted(caller.processes))})",
                    )
                )
                continue
            opened.setdefault(handoff_id, pair)
            correlation: str | None = payload.case_id
        else:
            correlation = item.case_id
            if scoped:
                known = opened.get(handoff_id) or pair_of(handoff_id)
                if known is None:
                    forbidden.append(
                        (
                            f"{prefix}handoff_id",
                            f"handoff {handoff_id!r} is not known to intake: a key scoped to "
                            f"{', '.join(sorted(caller.processes))} may post on a handoff "
                            "only once its submitted or expected event was accepted",
                        )
                    )
                    continue
                if not caller.may_write_for(*known):
                    forbidden.append(
                        (
                            f"{prefix}handoff_id",
                            f"key {caller.name!r} may not write for handoff {handoff_id!r} "
                            f"from {known[0]!r} to {known[1]!r}",
                        )
                    )
                    continue
        data = payload_json(payload)
        record = encode_payload(
            payload,
            event_id=event_id,
            key=handoff_id,
            producer=PRODUCER,
            occurred_at=occurred_at,
            recorded_at=now,
            correlation_id=correlation,
            source=caller.name,
            digest=digest(item.type, handoff_id, item.occurred_at, data),
            data=data,
        )
        size = len(record.value) + len(record.key)
        if size > limits.max_event_bytes - _HEADROOM:  # near the limit: count the headers too
            size += sum(len(k) + len(v) for k, v in record.headers)
        if size > limits.max_event_bytes:
            too_large.append(
                (
                    path or "body",
                    f"the event is {size} bytes encoded; a Kafka record may be at most "
                    f"{limits.max_event_bytes} bytes",
                )
            )
            continue
        records.append(record)
    if invalid:
        raise InvalidEvents(invalid)
    if forbidden:
        raise OutOfScope(forbidden)
    if too_large:
        raise EventTooLarge(too_large)
    return Admitted(records, opened)
