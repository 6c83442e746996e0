"""intake's response models: what a post and the rejection views answer.

Kept apart from the routes (like sla's and routing's schemas) so that the typed client
(`baton/client.py`) parses answers into these very classes without importing the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from intake.api import examples
from intake.domain.rejections import Rejection
from shared.openapi import model_examples


class EventAccepted(BaseModel):
    event_id: str
    handoff_id: str
    type: str = Field(description="the event type as written, e.g. handoff.submitted")


class Accepted(BaseModel):
    """What was accepted: every event with its id (given, or derived from the key)."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.BATCH))

    accepted: int
    events: list[EventAccepted]


class RejectionOut(BaseModel):
    """An event intake accepted that a service downstream refused (dead-lettered)."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.REJECTION))

    id: str = Field(description="<dead-letter topic>:<partition>:<offset>")
    service: str = Field(description="the service that refused it: routing, sla or metrics")
    reason_code: str = Field(description="closed set, e.g. unknown-handoff, no-route, invalid")
    reason: str = Field(description="the reason in words")
    failed_at: datetime
    handoff_id: str
    event_id: str | None
    event_type: str | None
    source: str | None = Field(description="the upstream system (API key name) that posted it")
    case_id: str | None
    occurred_at: str | None
    replayable: bool
    replayed_at: datetime | None
    replayed_by: str | None

    @classmethod
    def of(cls, item: Rejection) -> RejectionOut:
        return cls(
            id=item.id,
            service=item.service,
            reason_code=item.code,
            reason=item.reason,
            failed_at=item.failed_at,
            handoff_id=item.handoff_id,
            event_id=item.event_id,
            event_type=item.event_type,
            source=item.source,
            case_id=item.case_id,
            occurred_at=item.occurred_at,
            replayable=item.replayable,
            replayed_at=item.replayed_at,
            replayed_by=item.replayed_by,
        )


class RejectionDetail(RejectionOut):
    """A rejection with the event as it was refused."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.REJECTION_DETAIL))

    event: dict[str, Any] | None = Field(description="the event as it was refused")

    @classmethod
    def detail(cls, item: Rejection) -> RejectionDetail:
        try:
            event = orjson.loads(item.value) if item.value else None
        except orjson.JSONDecodeError:
            event = None
        return cls(**RejectionOut.of(item).model_dump(), event=event)


class RejectionList(BaseModel):
    """A page of rejections, newest first."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.REJECTIONS))

    count: int = Field(description="rejections matching the filters")
    offset: int
    items: list[RejectionOut]


class Replayed(BaseModel):
    """The rejection replayed: its event posted again with its own id."""

    model_config = ConfigDict(json_schema_extra=model_examples(examples.REPLAYED))

    replayed: Literal[True] = True
    rejection: RejectionOut
