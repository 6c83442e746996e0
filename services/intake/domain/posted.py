"""What upstream systems post: one model per lifecycle event type, `data` typed by `type`.

The posted event is a discriminated union on `type`, so one pass of pydantic validates the
item and its payload (the shared contract of that event type) together, and the OpenAPI shows
each type's `data` as its own schema. Pure: no FastAPI, no Kafka.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.contracts import EventTime, Identifier
from shared.events import (
    HandoffAcceptedV1,
    HandoffCancelledV1,
    HandoffCompletedV1,
    HandoffExpectedV1,
    HandoffOpeningV1,
    HandoffPausedV1,
    HandoffRatedV1,
    HandoffRejectedV1,
    HandoffReprioritizedV1,
    HandoffResumedV1,
    HandoffSubmittedV1,
)


class _Posted(BaseModel):
    """Fields every posted lifecycle event has besides `type` and `data`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handoff_id: Identifier | None = Field(
        None, description="required except on submitted/expected (default: derived from the id)"
    )
    event_id: Identifier | None = Field(
        None,
        description="your id for this event; a retry with the same id is ignored. Required "
        "unless the request has an Idempotency-Key (ids are then derived from it)",
    )
    occurred_at: EventTime | None = Field(
        None, description="event time with a UTC offset; default: when intake received it"
    )
    case_id: Identifier | None = Field(None, description="the case, when the event knows it")


class SubmittedIn(_Posted):
    """The handoff was delivered to the receiving process: its clocks start."""

    type: Literal["submitted"]
    data: HandoffSubmittedV1


class ExpectedIn(_Posted):
    """The supplier owes this handoff by `data.due_at` (or the route's delivery target)."""

    type: Literal["expected"]
    data: HandoffExpectedV1


class AcceptedIn(_Posted):
    """The receiver took the handoff in charge (the first response)."""

    type: Literal["accepted"]
    data: HandoffAcceptedV1 = HandoffAcceptedV1()


class CompletedIn(_Posted):
    """The receiver finished the work (the resolution)."""

    type: Literal["completed"]
    data: HandoffCompletedV1 = HandoffCompletedV1()


class RejectedIn(_Posted):
    """Returned to the supplier as incomplete or inaccurate (`data.reason` required)."""

    type: Literal["rejected"]
    data: HandoffRejectedV1


class PausedIn(_Posted):
    """The receiver waits (e.g. on the supplier): the clocks stop until resumed."""

    type: Literal["paused"]
    data: HandoffPausedV1 = HandoffPausedV1()


class ResumedIn(_Posted):
    """The wait is over: the clocks run again."""

    type: Literal["resumed"]
    data: HandoffResumedV1 = HandoffResumedV1()


class ReprioritizedIn(_Posted):
    """A new priority (`data.priority`): its targets apply from the original start."""

    type: Literal["reprioritized"]
    data: HandoffReprioritizedV1


class CancelledIn(_Posted):
    """The handoff is withdrawn: every clock stops with no outcome."""

    type: Literal["cancelled"]
    data: HandoffCancelledV1 = HandoffCancelledV1()


class RatedIn(_Posted):
    """The internal customer's satisfaction (`data.rating` 1-5, optional comment)."""

    type: Literal["rated"]
    data: HandoffRatedV1


PostedEvent = Annotated[
    SubmittedIn
    | ExpectedIn
    | AcceptedIn
    | CompletedIn
    | RejectedIn
    | PausedIn
    | ResumedIn
    | ReprioritizedIn
    | CancelledIn
    | RatedIn,
    Field(discriminator="type"),
]
"""One lifecycle event as posted; `type` chooses the shape of `data`."""

OPENING_TYPES = frozenset({"submitted", "expected"})


class BatchIn(BaseModel):
    """Events of any type, for any handoffs; all are accepted or none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: list[PostedEvent] = Field(min_length=1)


class HandoffIn(HandoffOpeningV1):
    """A handoff delivered to (or, with type=expected, owed to) the receiving process; the
    payload fields sit at the top level, beside the event's own."""

    handoff_id: Identifier | None = Field(None, description="default: derived from event_id")
    event_id: Identifier | None = None
    occurred_at: EventTime | None = None
    type: Literal["submitted", "expected"] = "submitted"

    def as_posted(self) -> SubmittedIn | ExpectedIn:
        """The same handoff in the shape of a posted event (already validated: no second
        validation on this hot path)."""
        payload = {name: getattr(self, name) for name in HandoffOpeningV1.model_fields}
        ids = {"handoff_id": self.handoff_id, "event_id": self.event_id, "case_id": None}
        if self.type == "expected":
            return ExpectedIn.model_construct(
                type="expected",
                data=HandoffExpectedV1.model_construct(**payload),
                occurred_at=self.occurred_at,
                **ids,  # type: ignore[arg-type]
            )
        return SubmittedIn.model_construct(
            type="submitted",
            data=HandoffSubmittedV1.model_construct(**payload),
            occurred_at=self.occurred_at,
            **ids,  # type: ignore[arg-type]
        )


BATCH = TypeAdapter(BatchIn)
ONE_EVENT: TypeAdapter[PostedEvent] = TypeAdapter(PostedEvent)
HANDOFF = TypeAdapter(HandoffIn)
