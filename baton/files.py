"""Events as an upstream system writes them to a file: JSON or JSON lines.

- JSON: one event (an object with `type`), a batch (`{"events": [...]}`, intake's own body) or
  a list of events;
- JSON lines (`.jsonl`, `.ndjson`, or any text with one object per line): one event a line.

`NaN` and `Infinity` are refused here as intake refuses them (they are not JSON). Pure.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson


class Format(StrEnum):
    """How the events are written."""

    AUTO = "auto"
    JSON = "json"
    JSONL = "jsonl"


class InputError(ValueError):
    """The input is not events: where, and why."""


_LINES_SUFFIXES = (".jsonl", ".ndjson")


def _events_of(document: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        items: list[Any] = document["events"]
    elif isinstance(document, list):
        items = document
    elif isinstance(document, dict):
        items = [document]
    else:
        raise InputError(f"{name}: expected an event, a list of events or {{'events': [...]}}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{name}: event {index + 1} is not a JSON object")
    return items


def _lines(text: str, name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise InputError(f"{name}:{number}: an event is a JSON object")
        events.append(item)
    return events


def _document(text: str, name: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None


def read_events(text: str, name: str = "-", fmt: Format = Format.AUTO) -> list[dict[str, Any]]:
    """The events written in `text` (read from `name`, for messages); raises InputError.
    `auto`: JSON lines for a .jsonl/.ndjson name, else one JSON document, else (several
    lines that are not one document) JSON lines."""
    if fmt is Format.AUTO and name.endswith(_LINES_SUFFIXES):
        fmt = Format.JSONL
    if fmt is Format.JSONL:
        events = _lines(text, name)
    elif fmt is Format.JSON:
        events = _events_of(_document(text, name), name)
    else:
        try:
            document = _document(text, name)
        except InputError:
            if len([line for line in text.splitlines() if line.strip()]) < 2:
                raise
            events = _lines(text, name)
        else:
            events = _events_of(document, name)
    if not events:
        raise InputError(f"{name}: no events")
    return events
