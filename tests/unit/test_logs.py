"""Log lines an operator can follow: JSON with the ids of what was being handled, the request id
of every HTTP request, the trace carried through Kafka headers; repeated warnings rate-limited."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from builders import T0, bare_service_app, event
from shared.kafka import headers_of
from shared.logs import RepeatedLogs, bound, formatter
from shared.settings import KafkaSettings
from shared.topics import Stream
from shared.tracing import REQUEST_ID, consuming, kafka_headers, tracing_wanted
from sla.adapters.telemetry import SlaTelemetry
from sla.consumer import SlaPartition
from sla.handlers import PartitionClocks

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


class Lines(logging.Handler):
    """What Baton's formatter makes of the records logged while it is installed."""

    def __init__(self, fmt: str = "json") -> None:
        super().__init__()
        self.stream = io.StringIO()
        self.setFormatter(formatter(fmt, "sla"))  # type: ignore[arg-type]

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")

    def json(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("baton.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


log = logging.getLogger("baton.test")


def test_a_line_is_one_json_object_with_the_ids_bound_where_it_was_logged(lines: Lines) -> None:
    with bound(request_id="r-1", handoff_id="h-1", case_id=None):
        log.warning("dead-lettering %s", "x", extra={"event_id": "e-1"})
    log.info("after")
    inside, after = lines.json()
    assert inside["message"] == "dead-lettering x" and inside["level"] == "warning"
    assert inside["service"] == "sla"
    assert inside["logger"] == "baton.test" and str(inside["timestamp"]).endswith("Z")
    assert (inside["request_id"], inside["handoff_id"], inside["event_id"]) == ("r-1", "h-1", "e-1")
    assert "case_id" not in inside  # an id that is not known is left out, never null
    assert "request_id" not in after and "handoff_id" not in after  # nothing leaks


def test_the_text_format_writes_the_same_ids_as_key_value_pairs() -> None:
    handler = Lines("text")
    log.addHandler(handler)
    try:
        with bound(request_id="r-2"):
            log.warning("hello")
    finally:
        log.removeHandler(handler)
    line = handler.stream.getvalue()
    assert "hello" in line and "request_id=r-2" in line and "[baton.test]" in line


def test_a_record_is_handled_with_its_ids_and_the_trace_it_carries_is_carried_on(
    lines: Lines,
) -> None:
    headers = [("traceparent", PARENT.encode()), (REQUEST_ID, b"req-9")]
    with consuming(headers, "t.handoff.events.v1", handoff_id="h-2", event_id="e-2"):
        log.info("handled")
        carried = dict(kafka_headers())
    assert kafka_headers() == []  # outside the record: nothing to carry
    (line,) = lines.json()
    assert line["trace_id"] == TRACE and line["request_id"] == "req-9"
    assert (line["handoff_id"], line["event_id"]) == ("h-2", "e-2")
    assert carried[REQUEST_ID] == b"req-9"
    assert carried["traceparent"].decode().split("-")[1] == TRACE


def test_repeated_warnings_are_rate_limited_and_debug_lines_never() -> None:
    limiter = RepeatedLogs(window=30.0)

    def record(level: int, at: float) -> logging.LogRecord:
        r = logging.LogRecord("aiokafka", level, __file__, 1, "Unable connect to %s", ("x",), None)
        r.created = at
        return r

    passed = [limiter.filter(record(logging.ERROR, t)) for t in (0.0, 1.0, 2.0, 31.0)]
    assert passed == [True, False, False, True]
    assert all(limiter.filter(record(logging.DEBUG, t)) for t in (0.0, 0.1, 0.2))


async def test_every_answer_carries_the_request_id_given_or_made(lines: Lines) -> None:
    @asynccontextmanager
    async def nothing(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = bare_service_app(nothing)

    @app.get("/v1/echo")
    async def echo() -> dict[str, str]:
        log.info("inside the handler")
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        given = await client.get("/v1/echo", headers={"X-Request-ID": "upstream-42"})
        made = await client.get("/v1/echo")
        junk = await client.get("/health/live", headers={"X-Request-ID": "no spaces allowed"})
        traced = await client.get("/v1/echo", headers={"traceparent": PARENT})
    assert given.headers["x-request-id"] == "upstream-42"
    assert len(made.headers["x-request-id"]) == 32
    assert junk.headers["x-request-id"] not in ("no spaces allowed", made.headers["x-request-id"])
    inside = [line for line in lines.json() if line["message"] == "inside the handler"]
    assert [line["request_id"] for line in inside] == [
        "upstream-42",
        made.headers["x-request-id"],
        traced.headers["x-request-id"],
    ]
    assert inside[2]["trace_id"] == TRACE and "trace_id" not in inside[0]


def test_tracing_is_off_unless_the_setting_or_an_otel_exporter_asks_for_it() -> None:
    assert not tracing_wanted(False, {})
    assert not tracing_wanted(False, {"OTEL_TRACES_EXPORTER": "none"})
    assert tracing_wanted(True, {})
    assert tracing_wanted(False, {"OTEL_TRACES_EXPORTER": "otlp"})
    assert tracing_wanted(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not tracing_wanted(True, {"OTEL_SDK_DISABLED": "true"})


@dataclass
class Routed:
    """A record of handoff.routed.v1 as sla's plumbing hands it over."""

    value: bytes
    key: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "handoff.routed.v1"
    partition: int = 0
    offset: int = 0


def test_sla_decisions_carry_the_trace_and_request_id_of_the_event_that_caused_them() -> None:
    kafka = KafkaSettings()
    day = 86400 * 1_000_000
    part = SlaPartition(
        0,
        PartitionClocks(retention_us=day, orphan_retention_us=day, idle_us=day),
        kafka=kafka,
        group="sla",
        telemetry=SlaTelemetry(CollectorRegistry(), kafka.topics.name(Stream.DECISIONS)),
    )
    traced, plain = event("submitted", "h-traced", T0), event("submitted", "h-plain", T0)
    carried = [("traceparent", PARENT.encode()), (REQUEST_ID, b"req-7")]
    broken = Routed(b"{not json", b"h-broken", list(carried))
    records = [
        Routed(traced.to_bytes(), b"h-traced", [*headers_of(traced), *carried]),
        Routed(plain.to_bytes(), b"h-plain", headers_of(plain)),
        broken,
    ]
    lines, sla_log = Lines(), logging.getLogger("sla.consumer")
    sla_log.addHandler(lines)
    try:
        outputs = part.process(records, T0).outputs  # type: ignore[arg-type]
    finally:
        sla_log.removeHandler(lines)
    decisions = {
        o.key: dict(o.headers) for o in outputs if o.topic == kafka.topics.name(Stream.DECISIONS)
    }
    assert decisions[b"h-traced"][REQUEST_ID] == b"req-7"
    assert decisions[b"h-traced"]["traceparent"] == PARENT.encode()  # tracing off: as it came
    assert REQUEST_ID not in decisions[b"h-plain"] and "traceparent" not in decisions[b"h-plain"]
    (warning,) = [line for line in lines.json() if line["level"] == "warning"]
    assert (warning["handoff_id"], warning["request_id"]) == ("h-broken", "req-7")
