"""Process-wide logging: one format (JSON lines, or text), the ids of what is being handled on
every line, and repeated lines rate-limited.

Every line is one JSON object (`<SERVICE>_LOG_FORMAT=json`, the default; `text` writes
`key=value` lines for people reading a terminal): `timestamp` (UTC), `level`, `service`,
`logger`, `message`, and whichever of `request_id`, `handoff_id`, `case_id`, `event_id`,
`trace_id`, `span_id` are known where the line was logged. The HTTP middleware binds the request id
(`shared.http.RequestContext`), the consumer loops bind the ids of the record in hand
(`shared.tracing.consuming`), and the trace comes from the current span. Modules keep logging
through the standard library (`logging.getLogger(__name__)`, ids of their own in `extra=`);
structlog renders every record, aiokafka's and uvicorn's included.

A broker outage makes aiokafka log every failed connection attempt and every retry loop log
its own attempt; without a bound that is hundreds of megabytes in minutes. `RepeatedLogs` lets
one line per message template through per window and says how many it held back; the state
changes themselves (Kafka gone, Kafka back) are logged by `shared.kafka.BrokerWatch`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, Literal

import orjson
import structlog
from opentelemetry import trace
from prometheus_client import disable_created_metrics

LogFormat = Literal["json", "text"]

ID_FIELDS = ("request_id", "handoff_id", "case_id", "event_id")
"""The ids bound to log lines while a request or a record is handled."""


class RepeatedLogs(logging.Filter):
    """At most one warning or error per message template and logger every `window` seconds;
    the next line after a quiet period says how many like it were suppressed. Keeps an outage
    from writing a log line per retry (aiokafka logs every failed connection attempt). Lines
    below WARNING pass: the DEBUG line per request, event or decision repeats its template by
    design."""

    def __init__(self, window: float = 30.0) -> None:
        super().__init__()
        self._window = window
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Let a record through, or count it as suppressed."""
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        first = self._seen.get(key)
        if first is not None and record.created - first[0] < self._window:
            self._seen[key] = (first[0], first[1] + 1)
            return False
        if first is not None and first[1]:
            record.msg = (
                f"{record.msg} ({first[1]} similar lines suppressed in the last "
                f"{record.created - first[0]:.0f} s)"
            )
        self._seen[key] = (record.created, 0)
        if len(self._seen) > 10_000:
            self._seen.clear()
        return True


def _add_trace(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The current span's trace and span ids (W3C hex), when there is a valid one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


_FIRST = ("timestamp", "level", "service", "logger", "message", "event")


def _ordered(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """timestamp, level, service, logger and message first, then the ids and the rest; uvicorn's
    ANSI-coloured copy of its message dropped."""
    event.pop("color_message", None)
    head = {k: event.pop(k) for k in _FIRST if k in event}
    return head | dict(event)


def _json(event: MutableMapping[str, Any], **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler Baton installs on the root logger (found again on a second call);
    writes to the current `sys.stderr`, whatever replaced it since."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def formatter(fmt: LogFormat, service: str | None = None) -> logging.Formatter:
    """The formatter of Baton's lines: JSON objects or `key=value` text, the service's name,
    ids and trace added."""

    def _add_service(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """The service's name (the process runs one)."""
        if service is not None:
            event["service"] = service
        return event

    chain: list[Any] = [
        _add_service,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _merge_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace,
    ]
    last: list[Any] = (
        [
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            _ordered,
            structlog.processors.JSONRenderer(serializer=_json),
        ]
        if fmt == "json"
        else [_ordered, structlog.dev.ConsoleRenderer(colors=False)]
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
    )


def configure_observability(service: str, level: str, fmt: LogFormat = "json") -> None:
    """Process-wide logging (format, level, ids, repeated lines rate-limited, uvicorn's lines
    in the same format) and the `_created` series off. Safe to call again (tests build many
    apps in one process): the handler is installed once and re-formatted. Like
    `logging.basicConfig`, it leaves a root logger that someone else equipped (pytest) alone:
    no format, no level and no rate limit on handlers that are not its own (a rate limit on
    pytest's capture handler would hide a line a later test looks for)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None and not root.handlers:
        handler = _Handler()
        handler.addFilter(RepeatedLogs())
        root.addHandler(handler)
    if handler is not None:
        handler.setFormatter(formatter(fmt, service))
        root.setLevel(level)
    for name in ("uvicorn", "uvicorn.access"):
        # uvicorn configured its own handlers before building the app: its lines go through
        # ours instead, so one process writes one format (an access log uvicorn was told to
        # leave off has no handler, and stays off).
        uvicorn_logger = logging.getLogger(name)
        if uvicorn_logger.handlers and handler is not None:
            uvicorn_logger.handlers = []
            uvicorn_logger.propagate = True
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
    disable_created_metrics()  # type: ignore[no-untyped-call]


_NO_IDS: Mapping[str, str] = MappingProxyType({})
_IDS: ContextVar[Mapping[str, str]] = ContextVar("baton_log_ids", default=_NO_IDS)
"""The ids bound in this context: one variable holding them all, so binding a record's ids
costs one set and one reset (structlog's per-key context variables cost ten times more on
the consumers' hot paths)."""


def _merge_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The ids bound where the line was logged (an id given in `extra=` wins)."""
    ids = _IDS.get()
    if ids:
        for key, value in ids.items():
            event.setdefault(key, value)
    return event


def bind(ids: Mapping[str, str | None]) -> Token[Mapping[str, str]]:
    """Bind ids (None values left out) until `unbind(token)`: `bound` without the context
    manager, for hot paths."""
    return _IDS.set({**_IDS.get(), **{k: v for k, v in ids.items() if v is not None}})


def unbind(token: Token[Mapping[str, str]]) -> None:
    """Restore the ids bound before `bind` returned `token`."""
    _IDS.reset(token)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Bind ids to every line logged in this context (None values are left out); restored on
    exit, so a request's or a record's ids never leak into the next one."""
    token = bind(ids)
    try:
        yield
    finally:
        unbind(token)


def current(name: str) -> str | None:
    """An id bound in this context (e.g. the request id a record should carry on)."""
    return _IDS.get().get(name)
