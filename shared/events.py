"""The event envelope, the versioned payload of every event type, and the registry between them.

One envelope for every message on every topic (CloudEvents-like): id, type, schema version,
event time, producer, key, correlation (the case) and causation. The payload in `data` is a
frozen model chosen by (event_type, schema_version). Adding an optional field to a payload is
compatible; anything else is a new major version registered beside the old one.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, PrivateAttr, ValidationError, field_validator

from shared.contracts import (
    CalendarV1,
    ClockName,
    EventTime,
    Frozen,
    Identifier,
    Priority,
    RouteV1,
    Slug,
    UtcDatetime,
    jsonable,
)

Text = Annotated[str, Field(max_length=2000)]
Attribute = str | int | float | bool


# --------------------------------------------------------------------------- lifecycle


class HandoffOpeningV1(Frozen):
    """Fields shared by the two events that open a handoff (expected, submitted)."""

    case_id: Identifier
    kind: Slug
    from_process: Slug = Field(alias="from")
    to_process: Slug | None = Field(None, alias="to")
    priority: Priority = Priority.P3
    attributes: dict[Annotated[str, Field(max_length=100)], Attribute] = Field(
        default_factory=dict, max_length=50
    )
    due_at: EventTime | None = None


class HandoffExpectedV1(HandoffOpeningV1):
    """The supplier owes this handoff, by `due_at` (or the route's delivery target)."""


class HandoffSubmittedV1(HandoffOpeningV1):
    """The handoff was delivered to the receiving process: its clocks start."""


class _Acted(Frozen):
    actor: Annotated[str, Field(max_length=200)] | None = None


class HandoffAcceptedV1(_Acted):
    """The receiver took the handoff in charge: the first response."""


class HandoffCompletedV1(_Acted):
    """The receiver finished the work: resolution."""

    note: Text | None = None


class HandoffRejectedV1(_Acted):
    """Returned to the supplier as incomplete or inaccurate: a quality defect, closes a cycle."""

    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class HandoffPausedV1(_Acted):
    """The receiver waits (e.g. on the supplier): the clocks stop until resumed."""

    reason: Text | None = None


class HandoffResumedV1(_Acted):
    """The wait is over: the clocks run again."""


class HandoffReprioritizedV1(_Acted):
    """A new priority: its targets apply from the original start."""

    priority: Priority
    reason: Text | None = None


class HandoffCancelledV1(_Acted):
    """The handoff is withdrawn: every clock stops with no outcome."""

    reason: Text | None = None


class HandoffRatedV1(_Acted):
    """The internal customer's satisfaction with the handoff."""

    rating: int = Field(ge=1, le=5)
    comment: Text | None = None


# --------------------------------------------------------------------------- decisions


class Outcome(StrEnum):
    MET = "met"
    MISSED = "missed"


class _HandoffFacts(Frozen):
    """Who handed what to whom, under which standard: the labels of every decision."""

    case_id: str
    kind: str
    from_process: str = Field(alias="from")
    to_process: str = Field(alias="to")
    priority: Priority
    cycle: int = Field(ge=1, description="1 for the first delivery, +1 per resubmission")
    route_id: str
    standard_version: int


class SlaOpenedV1(_HandoffFacts):
    """A delivery reached the receiver and its clocks started (a resubmission opens again)."""

    opened_at: UtcDatetime


class SlaDecisionV1(_HandoffFacts):
    """What every SLA decision says about the clock it concerns."""

    clock: ClockName
    target_seconds: float
    deadline: UtcDatetime | None
    revision: int = Field(0, ge=0, description="0 first; +1 per correction of this clock")
    decided_at: UtcDatetime


class SlaWarningV1(SlaDecisionV1):
    """A warning threshold of the target was crossed while the clock ran."""

    threshold: int


class SlaMetV1(SlaDecisionV1):
    """The milestone was reached in time."""

    reached_at: UtcDatetime
    elapsed_business_seconds: float
    elapsed_wall_seconds: float


class SlaMissedV1(SlaDecisionV1):
    """The deadline passed without the milestone: emitted at that moment."""


class SlaRetractedV1(SlaDecisionV1):
    """An outcome emitted earlier no longer holds (a late event changed the facts)."""

    retracted: Outcome
    reason: str


class SlaStoppedV1(SlaDecisionV1):
    """The clock stopped at its milestone (in time or late): the durations to observe."""

    reached_at: UtcDatetime
    elapsed_business_seconds: float
    elapsed_wall_seconds: float
    late: bool


# --------------------------------------------------------------------------- status table


class ClockStage(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    CANCELLED = "cancelled"


class HandoffState(StrEnum):
    EXPECTED = "expected"
    OPEN = "open"
    RETURNED = "returned"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


LifecycleName = Literal[
    "expected",
    "submitted",
    "accepted",
    "completed",
    "rejected",
    "paused",
    "resumed",
    "reprioritized",
    "cancelled",
    "rated",
]


class ClockStatusV1(Frozen):
    """One clock of one cycle as of `HandoffStatusV1.as_of`."""

    clock: ClockName
    cycle: int
    stage: ClockStage
    outcome: Outcome | None
    started_at: UtcDatetime
    deadline: UtcDatetime | None
    stopped_at: UtcDatetime | None
    target_seconds: float
    priority: Priority | None = Field(None, description="the priority the clock is judged by")
    elapsed_business_seconds: float | None = Field(
        None, description="business time used as of as_of (pauses excluded)"
    )
    elapsed_wall_seconds: float | None = None
    paused_business_seconds: float | None = None
    warnings_at: tuple[UtcDatetime | None, ...] = Field(
        (), description="while running: when each warning threshold is reached (null: paused)"
    )


class CycleStatusV1(Frozen):
    """One delivery of the handoff to its receiver, until completion, rejection or cancel."""

    cycle: int
    started_at: UtcDatetime
    ended_at: UtcDatetime | None
    ended_by: Literal["completed", "rejected", "cancelled"] | None


class EventRecordV1(Frozen):
    """One lifecycle event of a handoff, as its status lists it."""

    type: LifecycleName
    occurred_at: UtcDatetime
    event_id: str


class HandoffStatusV1(Frozen):
    """The SLA status of a handoff: the compacted table other services materialise.

    The optional fields (all written by sla since they exist) make a row enough to answer every
    status query on any instance: with the calendar, a reader brings a running clock's business
    time from `as_of` to its own now.
    """

    case_id: str
    kind: str
    from_process: str = Field(alias="from")
    to_process: str = Field(alias="to")
    priority: Priority
    state: HandoffState
    route_id: str
    standard_version: int
    clocks: tuple[ClockStatusV1, ...]
    as_of: UtcDatetime
    calendar: CalendarV1 | None = Field(None, description="the calendar the clocks run on")
    objective: float | None = None
    warnings: tuple[int, ...] | None = Field(None, description="warning thresholds, %")
    cycles: tuple[CycleStatusV1, ...] = ()
    history: tuple[EventRecordV1, ...] = ()
    closed_at: UtcDatetime | None = Field(None, description="completed or cancelled at")


# --------------------------------------------------------------------------- chains


class ChainV1(Frozen):
    """How a handoff routing opened along the map follows the one before it (envelope field
    `chain` of its `handoff.submitted`): the first handoff of the chain, its depth, the
    completed handoff and the route whose `next` opened this one."""

    root: Identifier = Field(description="handoff id of the chain's first handoff")
    depth: int = Field(ge=1, description="1 for the handoff after the first, +1 per step")
    previous: Identifier = Field(description="the completed handoff that opened this one")
    route_id: Slug = Field(description="the route whose `next` step opened this one")


# --------------------------------------------------------------------------- notifications


class NotificationReason(StrEnum):
    """Why a team is told: the closed set, also a metric label."""

    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"
    REJECTION = "rejection"


class NotificationRequestedV1(Frozen):
    """A webhook notification routing owes a contact (`routing.notifications.v1`, key its id):
    what to post, where, signed with which secret, and not before when."""

    notification_id: str = Field(description="derived from the decision id and the step")
    handoff_id: Identifier
    reason: NotificationReason
    clock: ClockName | None = Field(None, description="None for a rejection")
    cycle: int | None = None
    team: Slug = Field(description="the process told (the accountable team)")
    level: int = Field(ge=0, description="0 the owner, N the N-th escalation contact")
    recipient: str = Field(description="the contact's name")
    webhook: str
    secret: str = Field(description="name of the signing secret (ROUTING_WEBHOOK_SECRETS)")
    urgent: bool
    not_before: UtcDatetime = Field(description="when it may be sent (the team's hours)")
    decided_at: UtcDatetime = Field(description="when the decision or rejection happened")
    body: dict[str, Any] = Field(description="the JSON posted, exactly")


class NotificationRetriedV1(Frozen):
    """An attempt failed and another will follow (key `<id>/retry`): a restart keeps the
    count and the backoff."""

    notification_id: str
    attempts: int = Field(ge=1)
    next_attempt_at: UtcDatetime
    error: str = Field(max_length=1000)


class NotificationDeliveredV1(Frozen):
    """The receiver acknowledged the notification (key `<id>/done`): never sent again."""

    notification_id: str
    attempts: int = Field(ge=1)
    status: int = Field(description="the receiver's HTTP status")
    delivered_at: UtcDatetime


class NotificationDeadLetteredV1(Frozen):
    """Given up (key `<id>/done`): a copy went to the outbox's dead-letter topic."""

    notification_id: str
    attempts: int = Field(ge=0)
    code: str = Field(description="refused | retries-exhausted | no-secret")
    error: str = Field(max_length=1000)
    dead_at: UtcDatetime


class NotificationsCancelledV1(Frozen):
    """Notifications of a handoff that no longer hold (the milestone came, the breach was
    retracted, the handoff closed): those pending for its clock and cycle (all clocks and
    cycles when not given) decided at or before `until` are dropped. Rejections stand."""

    handoff_id: Identifier
    clock: ClockName | None = None
    cycle: int | None = None
    until: UtcDatetime
    reason: str = Field(max_length=200)


# --------------------------------------------------------------------------- registry

PAYLOADS: dict[tuple[str, int], type[Frozen]] = {
    ("handoff.expected", 1): HandoffExpectedV1,
    ("handoff.submitted", 1): HandoffSubmittedV1,
    ("handoff.accepted", 1): HandoffAcceptedV1,
    ("handoff.completed", 1): HandoffCompletedV1,
    ("handoff.rejected", 1): HandoffRejectedV1,
    ("handoff.paused", 1): HandoffPausedV1,
    ("handoff.resumed", 1): HandoffResumedV1,
    ("handoff.reprioritized", 1): HandoffReprioritizedV1,
    ("handoff.cancelled", 1): HandoffCancelledV1,
    ("handoff.rated", 1): HandoffRatedV1,
    ("sla.opened", 1): SlaOpenedV1,
    ("sla.warning", 1): SlaWarningV1,
    ("sla.met", 1): SlaMetV1,
    ("sla.missed", 1): SlaMissedV1,
    ("sla.retracted", 1): SlaRetractedV1,
    ("sla.stopped", 1): SlaStoppedV1,
    ("sla.status", 1): HandoffStatusV1,
    ("notification.requested", 1): NotificationRequestedV1,
    ("notification.retried", 1): NotificationRetriedV1,
    ("notification.delivered", 1): NotificationDeliveredV1,
    ("notification.dead_lettered", 1): NotificationDeadLetteredV1,
    ("notifications.cancelled", 1): NotificationsCancelledV1,
}
TYPE_OF: dict[type[Frozen], tuple[str, int]] = {model: key for key, model in PAYLOADS.items()}
LATEST_VERSION: dict[str, int] = {}
for _type, _version in PAYLOADS:
    LATEST_VERSION[_type] = max(_version, LATEST_VERSION.get(_type, 0))

LIFECYCLE_TYPES: tuple[str, ...] = tuple(t for t, _ in PAYLOADS if t.startswith("handoff."))
"""Every lifecycle event type, in SPEC order."""


class UnknownEventType(ValueError):
    """The (event_type, schema_version) pair is not in the registry."""


def payload_model(event_type: str, schema_version: int = 1) -> type[Frozen]:
    """The payload model registered for an event type and major version."""
    try:
        return PAYLOADS[(event_type, schema_version)]
    except KeyError:
        known = ", ".join(sorted({t for t, _ in PAYLOADS}))
        raise UnknownEventType(
            f"unknown event_type {event_type!r} (schema_version {schema_version}); known: {known}"
        ) from None


class Envelope(Frozen):
    """The one envelope of every message. `data` is checked against the registered payload."""

    event_id: Identifier
    event_type: str
    schema_version: int = Field(1, ge=1)
    occurred_at: UtcDatetime
    recorded_at: UtcDatetime
    producer: str
    key: Identifier = Field(description="the entity whose order matters: the handoff id")
    correlation_id: str | None = Field(None, description="the case id")
    causation_id: str | None = None
    source: str | None = Field(
        None, max_length=200, description="the upstream system that posted it (its API key)"
    )
    digest: str | None = Field(
        None,
        max_length=64,
        description="hash of the event as the upstream system posted it: tells a retry "
        "(same id, same digest) from a reuse of the event id for other content",
    )
    route: RouteV1 | None = Field(None, description="set by routing on events that open a handoff")
    chain: ChainV1 | None = Field(
        None, description="set by routing on a handoff it opened along the map (route `next`)"
    )
    data: dict[str, Any]

    _payload: Frozen | None = PrivateAttr(None)

    @field_validator("event_type")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in LATEST_VERSION:
            payload_model(value)  # raises with the list of known types
        return value

    def model_post_init(self, context: Any, /) -> None:
        model = payload_model(self.event_type, self.schema_version)
        try:
            self._payload = model.model_validate(self.data)
        except ValidationError as exc:
            # Re-root the payload's errors under "data" so a 4xx names the full field path.
            raise ValidationError.from_exception_data(
                exc.title,
                [
                    {
                        "type": e["type"],
                        "loc": ("data", *e["loc"]),
                        "input": e["input"],
                        "ctx": e.get("ctx", {}),
                    }
                    for e in exc.errors()
                ],
            ) from None

    @property
    def payload(self) -> Frozen:
        """The typed payload (validated when the envelope was built)."""
        assert self._payload is not None
        return self._payload

    def with_route(self, route: RouteV1, producer: str) -> Envelope:
        """This event enriched by routing (same id, so downstream de-duplication still holds)."""
        return self.model_copy(update={"route": route, "producer": producer})

    def to_bytes(self) -> bytes:
        """The JSON encoding written to Kafka (by alias, without nulls)."""
        return self.__pydantic_serializer__.to_json(self, by_alias=True, exclude_none=True)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Decode a Kafka value; raises ValidationError (bad shape) or UnknownEventType."""
        return cls.model_validate_json(raw)


def make_envelope(
    payload: Frozen,
    *,
    key: str,
    producer: str,
    occurred_at: datetime,
    recorded_at: datetime,
    event_id: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    route: RouteV1 | None = None,
    chain: ChainV1 | None = None,
) -> Envelope:
    """Wrap a payload in an envelope; the event id defaults to a fresh UUID."""
    event_type, version = TYPE_OF[type(payload)]
    return Envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        schema_version=version,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        producer=producer,
        key=key,
        correlation_id=correlation_id,
        causation_id=causation_id,
        route=route,
        chain=chain,
        data=jsonable(payload),
    )


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An envelope already encoded for Kafka: what a hot path publishes without building
    pydantic objects for data it produced itself."""

    event_id: str
    event_type: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


_NAIVE_EPOCH = datetime(1970, 1, 1)


@functools.lru_cache(maxsize=4096)
def utc_text(instant: datetime) -> str:
    """An aware datetime as the envelope writes it ('2026-11-21T09:30:00.123456Z'); cached,
    because a request's events share their receipt time."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def utc_text_us(us: int) -> str:
    """Microseconds since the epoch as the envelope writes instants (fast path)."""
    return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat() + "Z"


def encode_payload(
    payload: Frozen,
    *,
    event_id: str,
    key: str,
    producer: str,
    occurred_at: datetime,
    recorded_at: datetime,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    source: str | None = None,
    digest: str | None = None,
    data: bytes | None = None,
) -> EncodedEvent:
    """Encode a validated payload in its envelope, as `Envelope.to_bytes` would lay it out.

    The payload is serialised by its own pydantic serializer (by alias, without nulls; or
    `data`, that serialisation done already) and spliced after the envelope's head: no
    Envelope object and no intermediate dict on the write path, and the JSON is the
    contract's by construction (tests decode it back).
    """
    event_type, version = TYPE_OF[type(payload)]
    head: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": version,
        "occurred_at": utc_text(occurred_at),
        "recorded_at": utc_text(recorded_at),
        "producer": producer,
        "key": key,
    }
    if correlation_id is not None:
        head["correlation_id"] = correlation_id
    if causation_id is not None:
        head["causation_id"] = causation_id
    if source is not None:
        head["source"] = source
    if digest is not None:
        head["digest"] = digest
    if data is None:
        data = payload_json(payload)
    value = orjson.dumps(head)[:-1] + b',"data":' + data + b"}"
    return EncodedEvent(
        event_id,
        event_type,
        key.encode(),
        value,
        ce_headers(event_id, event_type, producer, version),
    )


def payload_json(payload: Frozen) -> bytes:
    """A payload's JSON as envelopes carry it (by alias, without nulls)."""
    data: bytes = payload.__pydantic_serializer__.to_json(payload, by_alias=True, exclude_none=True)
    return data


def ce_headers(
    event_id: str, event_type: str, producer: str, schema_version: int | None = None
) -> list[tuple[str, bytes]]:
    """The Kafka headers mirroring an event's id, type, source and version (CloudEvents'
    Kafka protocol binding names): the one place they are spelled."""
    version = LATEST_VERSION[event_type] if schema_version is None else schema_version
    return [("ce_id", event_id.encode()), *_static_headers(event_type, producer, version)]


@functools.lru_cache(maxsize=256)
def _static_headers(event_type: str, producer: str, version: int) -> tuple[tuple[str, bytes], ...]:
    """The headers that do not vary per event (encoded once per type and producer)."""
    return (
        ("ce_type", event_type.encode()),
        ("ce_source", producer.encode()),
        ("ce_specversion", b"1.0"),
        ("baton_schema_version", str(version).encode()),
        ("content-type", b"application/json"),
    )


_ID_NAMESPACE = uuid.UUID("5b0c1f0e-2d8a-4c39-9d55-6f1c0e7a4b21")


_ID_PREFIX = _ID_NAMESPACE.bytes


def derived_id(*parts: str) -> str:
    """A deterministic UUID (version 5) from its parts: a retry or a replay yields the same
    event id. Same value as uuid.uuid5, without building UUID objects (a hot path in sla)."""
    digest = bytearray(hashlib.sha1(_ID_PREFIX + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


__all__ = [
    "LIFECYCLE_TYPES",
    "PAYLOADS",
    "ChainV1",
    "ClockStage",
    "ClockStatusV1",
    "CycleStatusV1",
    "EncodedEvent",
    "Envelope",
    "EventRecordV1",
    "HandoffAcceptedV1",
    "HandoffCancelledV1",
    "HandoffCompletedV1",
    "HandoffExpectedV1",
    "HandoffOpeningV1",
    "HandoffPausedV1",
    "HandoffRatedV1",
    "HandoffRejectedV1",
    "HandoffReprioritizedV1",
    "HandoffResumedV1",
    "HandoffState",
    "HandoffStatusV1",
    "HandoffSubmittedV1",
    "NotificationDeadLetteredV1",
    "NotificationDeliveredV1",
    "NotificationReason",
    "NotificationRequestedV1",
    "NotificationRetriedV1",
    "NotificationsCancelledV1",
    "Outcome",
    "SlaDecisionV1",
    "SlaMetV1",
    "SlaMissedV1",
    "SlaOpenedV1",
    "SlaRetractedV1",
    "SlaStoppedV1",
    "SlaWarningV1",
    "UnknownEventType",
    "ValidationError",
    "ce_headers",
    "derived_id",
    "encode_payload",
    "make_envelope",
    "payload_json",
    "payload_model",
    "utc_text",
    "utc_text_us",
]
