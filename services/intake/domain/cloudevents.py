"""CloudEvents 1.0 in, Baton's posted events out: structured, batch and binary content modes.

The mapping (README "CloudEvents"):
- `type` is `baton.handoff.<event>` (`baton.handoff.submitted`, `baton.handoff.accepted`, ...);
- `id` is the event id (required: it is what makes a retry safe), `subject` the handoff id
  (required except on submitted/expected), `time` the event's occurred_at, `source` the
  upstream system's own name for itself (required by the specification; Baton identifies who
  posted by the API key);
- `data` is what Baton's own JSON puts in `data` (for submitted: case_id, kind, from, to,
  priority, attributes), as JSON (`datacontenttype` absent or a JSON type);
- the extension `caseid` names the case on events after the opening one.

Attributes are checked by the CNCF SDK (cloudevents.core); each problem is named by the
attribute it concerns, and the payload by `data.<field>` as in Baton's own JSON. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from intake.domain.events import InvalidEvents
from intake.domain.posted import ONE_EVENT, PostedEvent
from shared.events import LifecycleName

TYPE_PREFIX = "baton.handoff."
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_JSON = re.compile(r"^(application|text)/([a-zA-Z0-9\-\.]+\+)?json(;.*)?$")
_NAMES = tuple(LifecycleName.__args__)  # type: ignore[attr-defined]
_REQUIRED = ("specversion", "id", "source", "type")
_MUST = "required by CloudEvents 1.0 (and the id is what makes a retry safe)"
_FIELD_OF = {"event_id": "id", "handoff_id": "subject", "occurred_at": "time", "case_id": "caseid"}


def is_binary(headers: Mapping[str, str]) -> bool:
    """True when the request carries a CloudEvent in binary mode (ce-* headers)."""
    return any(name.lower().startswith("ce-") for name in headers)


def _reason(error: BaseCloudEventException) -> str:
    return str(error).strip() or type(error).__name__


def _to_posted(event: BaseCloudEvent, prefix: str, data_prefix: str) -> PostedEvent:
    """The posted event a CloudEvent carries; `prefix` names its attributes in errors, and
    `data_prefix` its payload (the same in structured mode, the body in binary mode)."""
    errors: list[tuple[str, str]] = []
    kind = event.get_type()
    name = kind.removeprefix(TYPE_PREFIX) if kind.startswith(TYPE_PREFIX) else None
    if name not in _NAMES:
        known = ", ".join(TYPE_PREFIX + n for n in _NAMES)
        errors.append((f"{prefix}type", f"{kind!r} is not a Baton event type (known: {known})"))
    content_type = event.get_datacontenttype()
    if content_type is not None and not _JSON.match(content_type):
        errors.append((f"{prefix}datacontenttype", f"{content_type!r}: Baton's data is JSON"))
    data = event.get_data()
    if data is not None and not isinstance(data, dict):
        errors.append((f"{data_prefix}data", "must be a JSON object (the event's payload)"))
    if errors:
        raise InvalidEvents(errors)
    posted: dict[str, Any] = {"type": name, "event_id": event.get_id(), "data": data or {}}
    if event.get_subject() is not None:
        posted["handoff_id"] = event.get_subject()
    if event.get_time() is not None:
        posted["occurred_at"] = event.get_time()
    case_id = event.get_extension("caseid")
    if case_id is not None:
        posted["case_id"] = case_id
    try:
        return ONE_EVENT.validate_python(posted)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            parts = [str(p) for p in err["loc"] if not (isinstance(p, str) and p in _NAMES)]
            where = data_prefix if parts[:1] == ["data"] else prefix
            field = ".".join(_FIELD_OF.get(p, p) for p in parts)
            errors.append((where + field, str(err["msg"]).removeprefix("Value error, ")))
        raise InvalidEvents(errors) from None


def _event(attributes: Any, prefix: str) -> PostedEvent:
    """One structured-mode event (its JSON object) as a posted event."""
    if not isinstance(attributes, dict):
        raise InvalidEvents([(prefix.rstrip(".") or "body", "a CloudEvent is a JSON object")])
    attributes = dict(attributes)
    missing = [
        (f"{prefix}{a}", "required by CloudEvents 1.0") for a in _REQUIRED if a not in attributes
    ]
    if missing:
        raise InvalidEvents(missing)
    if attributes.get("specversion") != "1.0":
        raise InvalidEvents([(f"{prefix}specversion", "Baton takes CloudEvents 1.0")])
    data = attributes.pop("data", None)
    if "data_base64" in attributes:
        raise InvalidEvents([(f"{prefix}data_base64", "Baton's data is JSON, not binary")])
    if "time" in attributes:
        try:
            attributes["time"] = datetime.fromisoformat(str(attributes["time"]))
        except ValueError:
            raise InvalidEvents(
                [(f"{prefix}time", "not an RFC 3339 timestamp, e.g. 2026-11-21T09:30:00+01:00")]
            ) from None
    try:
        event = CloudEvent(attributes, data)
    except CloudEventValidationError as exc:
        raise InvalidEvents(
            [
                (f"{prefix}{attribute}", "; ".join(_reason(e) for e in errors))
                for attribute, errors in exc.errors.items()
            ]
        ) from None
    return _to_posted(event, prefix, prefix)


def structured(document: Any) -> PostedEvent:
    """A structured-mode request body (one CloudEvent)."""
    return _event(document, "")


def batch(document: Any) -> list[PostedEvent]:
    """A batch-mode request body (a JSON array of CloudEvents); every problem of every event."""
    if not isinstance(document, list) or not document:
        raise InvalidEvents([("body", "a CloudEvents batch is a non-empty JSON array of events")])
    out: list[PostedEvent] = []
    errors: list[tuple[str, str]] = []
    for index, item in enumerate(document):
        try:
            out.append(_event(item, f"[{index}]."))
        except InvalidEvents as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidEvents(errors)
    return out


def binary(headers: Mapping[str, str], body: bytes) -> PostedEvent:
    """A binary-mode request: attributes in ce-* headers, the event's data as the body."""
    names = {name.lower() for name in headers}
    missing = [
        (f"ce-{a}", "required by CloudEvents 1.0") for a in _REQUIRED if f"ce-{a}" not in names
    ]
    if missing:
        raise InvalidEvents(missing)
    if headers.get("ce-specversion") != "1.0":
        raise InvalidEvents([("ce-specversion", "Baton takes CloudEvents 1.0")])
    try:
        event = from_binary(HTTPMessage(dict(headers), body), JSONFormat(), CloudEvent)
    except CloudEventValidationError as exc:
        raise InvalidEvents(
            [
                (f"ce-{attribute}", "; ".join(_reason(e) for e in errors))
                for attribute, errors in exc.errors.items()
            ]
        ) from None
    except (ValueError, TypeError) as exc:
        raise InvalidEvents([("ce-time", f"not an RFC 3339 timestamp ({exc})")]) from None
    return _to_posted(event, "ce-", "")
