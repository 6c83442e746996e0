"""One handoff followed from its HTTP request to its decisions: the W3C trace context and the
request id carried through Kafka headers, OpenTelemetry spans when tracing is on.

Kafka headers (on every record a request or a record causes, beside the `ce_*` headers):
`traceparent` (and `tracestate`), W3C Trace Context as OpenTelemetry's messaging
instrumentations write them, and `x-request-id`, the id intake gave the request. A consumer
continues the trace and the request id of the record it handles, so its log lines and the
records it writes carry them on: intake -> routing -> sla -> metrics.

Tracing is off by default. It is on with `<SERVICE>_TRACING=true`, or when the standard
OpenTelemetry variables ask for an exporter (`OTEL_TRACES_EXPORTER` other than `none`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true`
keeps it off whatever else says. On, each service has a tracer provider (`service.name` from
`OTEL_SERVICE_NAME`, else `baton-<service>`; `OTEL_RESOURCE_ATTRIBUTES` added), a server span
per HTTP request and a consumer span per record, exported by what `OTEL_TRACES_EXPORTER` names:
`otlp` (the default; OTLP over HTTP, configured by the `OTEL_EXPORTER_OTLP_*` variables),
`console`, or `none` (spans and ids in the logs, nothing exported). Exporters are imported only
then. Off, no span is made, but a trace context that arrives is carried on unchanged: a caller's
traceparent still reaches every record and log line its request caused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.logs import bind, current, unbind

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
REQUEST_ID = "x-request-id"
"""The Kafka header (and HTTP header, case aside) of the request id."""

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None
"""Set once tracing is on in this process (OpenTelemetry's provider is process-wide)."""

Headers = Sequence[tuple[str, bytes]]


def tracing_on() -> bool:
    """Whether this process traces (configure_tracing turned it on)."""
    return _tracer is not None


def tracing_wanted(setting: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Whether tracing is on, from the service's setting and the OTEL_* variables."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return setting or exporters not in ("", "none") or bool(endpoint)


def configure_tracing(
    service: str, setting: bool, environ: Mapping[str, str] | None = None
) -> bool:
    """Install the tracer provider and its exporters when tracing is wanted (once per
    process); returns whether tracing is on."""
    global _tracer
    env = os.environ if environ is None else environ
    if _tracer is not None or not tracing_wanted(setting, env):
        return _tracer is not None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": f"baton-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")]
    for name in filter(None, names):
        exporter: SpanExporter
        if name == "none":
            continue
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporter = ConsoleSpanExporter()
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER={name!r}: Baton knows otlp, console and none")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("baton")
    log.info("tracing on: exporters %s", [n for n in names if n and n != "none"] or "none")
    return True


@contextmanager
def continued(
    carrier: Mapping[str, str],
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span | None]:
    """Continue the trace a carrier (`traceparent`, `tracestate`) names: a span of ours when
    tracing is on, else the caller's context as it is. Yields the span (None when off)."""
    parent = _PROPAGATOR.extract(carrier) if carrier else None
    if _tracer is not None:
        with _tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes
        ) as span:
            yield span
        return
    if parent is None:
        yield None
        return
    token = otel_context.attach(parent)
    try:
        yield None
    finally:
        otel_context.detach(token)


class consuming:
    """Handle one record inside its trace and with its ids on every log line: the request id
    and trace context it carries, its handoff, case and event ids. A class, not a generator:
    it runs for every record a consumer handles, and costs a few microseconds this way."""

    __slots__ = ("_ids", "_span", "_token", "_trace")

    def __init__(
        self,
        headers: Headers,
        topic: str,
        *,
        handoff_id: str | None = None,
        case_id: str | None = None,
        event_id: str | None = None,
    ) -> None:
        carrier: dict[str, str] | None = None
        request_id = None
        for key, value in headers:
            if key in (TRACEPARENT, TRACESTATE):
                if carrier is None:
                    carrier = {}
                carrier[key] = value.decode("latin-1")
            elif key == REQUEST_ID:
                request_id = value.decode("latin-1")
        self._ids = {
            "request_id": request_id,
            "handoff_id": handoff_id,
            "case_id": case_id,
            "event_id": event_id,
        }
        self._span: Any = None
        self._trace: object = None
        self._token: Any = None
        if _tracer is not None:
            parent = _PROPAGATOR.extract(carrier) if carrier else None
            self._span = _tracer.start_as_current_span(
                f"process {topic}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": topic,
                    "messaging.message.id": event_id or "",
                    "baton.handoff_id": handoff_id or "",
                },
            )
        elif carrier:
            self._trace = _PROPAGATOR.extract(carrier)

    def __enter__(self) -> None:
        self._token = bind(self._ids)
        if self._span is not None:
            self._span.__enter__()
        elif self._trace is not None:
            self._trace = otel_context.attach(self._trace)  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        if self._span is not None:
            self._span.__exit__(*exc)
        elif self._trace is not None:
            otel_context.detach(self._trace)  # type: ignore[arg-type]
        unbind(self._token)


def kafka_headers() -> list[tuple[str, bytes]]:
    """The headers a record written now carries on: the current trace context and request
    id (none of them when there is neither)."""
    out: list[tuple[str, bytes]] = []
    if trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        out.extend((k, v.encode("latin-1")) for k, v in carrier.items())
    request_id = current("request_id")
    if request_id is not None:
        out.append((REQUEST_ID, request_id.encode("latin-1")))
    return out


def carries(headers: Headers) -> bool:
    """Whether a record carries a trace context or a request id (cheap: consumers that
    handle records in batches skip `consuming` for the many that carry neither)."""
    return _tracer is not None or any(
        key in (TRACEPARENT, TRACESTATE, REQUEST_ID) for key, _ in headers
    )


def carried_on(
    headers: Headers,
    topic: str,
    *,
    handoff_id: str | None = None,
    case_id: str | None = None,
    event_id: str | None = None,
) -> list[tuple[str, bytes]]:
    """The headers what a record causes carries on, for a consumer that decides on a whole
    batch at once (sla): the record is handled inside its own consumer span when tracing is
    on (so what it causes is that span's child), its trace and request id as they came when
    it is off; none when the record carries neither."""
    if not carries(headers):
        return []
    with consuming(headers, topic, handoff_id=handoff_id, case_id=case_id, event_id=event_id):
        return kafka_headers()
