"""The `baton` command and its client without the services: reading events, cutting batches,
keys, retries, problem display, exit statuses, options and environment, tables and JSON.
The services are answered by an httpx.MockTransport (no Kafka is involved at all)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from baton import cli
from baton.client import (
    MAX_BATCH,
    MAX_BODY_BYTES,
    BatchRefused,
    BatonError,
    Client,
    Urls,
    batch_key,
    batches,
    encode_batch,
)
from baton.files import Format, InputError, read_events
from intake.settings import Settings as IntakeSettings
from shared.problem import FieldError, Problem

runner = CliRunner()
MAP = Path(__file__).resolve().parents[2] / "deploy" / "process-map.yaml"
Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, title: str, *errors: tuple[str, str], **headers: str) -> httpx.Response:
    body = Problem(
        title=title,
        status=status,
        detail="nothing was accepted",
        errors=[FieldError(field=f, reason=r) for f, r in errors],
    )
    return httpx.Response(
        status,
        content=body.model_dump_json(),
        headers={"content-type": "application/problem+json", **headers},
    )


def accepted(request: httpx.Request) -> httpx.Response:
    """intake's 202 for whatever batch was posted."""
    events = json.loads(request.content)["events"]
    items = [
        {"event_id": e.get("event_id", "derived"), "handoff_id": e["handoff_id"], "type": e["type"]}
        for e in events
    ]
    return httpx.Response(202, json={"accepted": len(items), "events": items})


class Served:
    """The services as the CLI's client sees them: `handler` answers, `requests` records."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = accepted

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    """The CLI's client answered by a Served instead of the network."""
    fake = Served()

    def client(self: cli.Settings) -> Client:
        return Client(self.urls, self.key, retries=0, transport=httpx.MockTransport(fake))

    monkeypatch.setattr(cli.Settings, "client", client)
    return fake


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli.app, list(args), input=stdin, env={"COLUMNS": "200", **(env or {})})


# --------------------------------------------------------------------------- reading events


def test_events_are_read_from_one_event_a_list_a_batch_or_json_lines() -> None:
    one = {"handoff_id": "h", "type": "accepted", "event_id": "e"}
    two = {"handoff_id": "h", "type": "completed", "event_id": "f"}
    assert read_events(json.dumps(one)) == [one]
    assert read_events(json.dumps([one, two])) == [one, two]
    assert read_events(json.dumps({"events": [one, two]})) == [one, two]
    lines = f"{json.dumps(one)}\n\n{json.dumps(two)}\n"
    assert read_events(lines, "events.txt") == [one, two]
    assert read_events(json.dumps(one), "events.ndjson") == [one]
    assert read_events(lines, fmt=Format.JSONL) == [one, two]


@pytest.mark.parametrize(
    ("text", "name", "fmt", "message"),
    [
        ('{"type": "accepted"', "e.json", Format.AUTO, "e.json:1:"),
        ('{"a": 1}\n{"a": NaN}\n', "e.jsonl", Format.AUTO, "e.jsonl:2: not JSON"),
        ('{"a": 1}\n[1]\n', "-", Format.AUTO, "-:2: an event is a JSON object"),
        ("[1, 2]", "-", Format.AUTO, "event 1 is not a JSON object"),
        ('"accepted"', "-", Format.AUTO, "expected an event"),
        ("[]", "-", Format.AUTO, "no events"),
        ('{"a": 1}\n{"a": 2}\n', "-", Format.JSON, "-:2:1: not JSON"),
    ],
)
def test_input_that_is_not_events_is_refused_saying_where(
    text: str, name: str, fmt: Format, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        read_events(text, name, fmt)


# --------------------------------------------------------------------------- batches and keys


def test_the_client_batch_limits_are_intakes_defaults() -> None:
    defaults = IntakeSettings.model_fields
    assert defaults["max_batch"].default == MAX_BATCH
    assert defaults["max_body_bytes"].default == MAX_BODY_BYTES


def test_events_are_cut_into_batches_by_count_and_by_body_size() -> None:
    events = [{"handoff_id": f"h{i}", "type": "accepted", "event_id": f"e{i}"} for i in range(7)]
    assert [len(b) for b in batches(events, 3)] == [3, 3, 1]
    assert [e for b in batches(events, 3) for e in b] == events
    one = len(encode_batch(events[:1]))
    sizes = [len(b) for b in batches(events, 100, max_bytes=one * 2)]
    assert sum(sizes) == 7 and max(sizes) < 7
    assert all(len(encode_batch(b)) <= one * 2 for b in batches(events, 100, max_bytes=one * 2))
    assert [len(b) for b in batches(events[:2], 100, max_bytes=10)] == [1, 1]


def test_batch_keys_come_from_the_prefix_or_from_the_content() -> None:
    body = encode_batch([{"handoff_id": "h", "type": "accepted"}])
    assert batch_key("load-7", 0, 1, body) == "load-7"
    assert [batch_key("load-7", i, 3, body) for i in range(3)] == [
        "load-7-1",
        "load-7-2",
        "load-7-3",
    ]
    derived = batch_key(None, 0, 1, body)
    assert derived == batch_key(None, 5, 9, body) and derived.startswith("baton-")
    assert derived != batch_key(None, 0, 1, encode_batch([{"handoff_id": "i"}]))
    with pytest.raises(ValueError, match="1 to 200 characters"):
        batch_key("k" * 199, 0, 2, body)


def test_a_refused_batch_names_fields_by_their_place_in_the_whole_input() -> None:
    events = [{"handoff_id": f"h{i}", "type": "accepted", "event_id": f"e{i}"} for i in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["events"][0]["event_id"] == "e2":
            return problem(422, "Invalid events", ("events[1].type", "bad"), ("body", "why"))
        return accepted(request)

    client = Client(transport=httpx.MockTransport(handler))
    with pytest.raises(BatchRefused) as refused:
        client.post_batches(events, size=2)
    assert (refused.value.batch, refused.value.batches, refused.value.first) == (2, 3, 2)
    assert [e.event_id for e in refused.value.accepted] == ["e0", "e1"]
    assert [(e.field, e.reason) for e in refused.value.fields()] == [
        ("events[3].type", "bad"),
        ("body", "why"),
    ]


# --------------------------------------------------------------------------- the client


def test_a_503_with_retry_after_is_retried_after_the_delay_then_answered() -> None:
    answers = [problem(503, "Kafka unavailable", **{"Retry-After": "2"})]
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else accepted(request)

    transport = httpx.MockTransport(handler)
    with Client(transport=transport, sleep=slept.append) as client:
        reply = client.post_events([{"handoff_id": "h", "type": "accepted"}], "key-1")
    assert reply.accepted == 1 and slept == [2.0]


def test_errors_are_raised_with_the_problem_even_when_the_body_is_not_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/handoffs"):
            return problem(404, "Not found")
        return httpx.Response(502, text="<html>bad gateway</html>")

    with Client(transport=httpx.MockTransport(handler), retries=0) as client:
        with pytest.raises(BatonError) as missing:
            client.status("ERP/PO#4711")
        assert missing.value.status == 404 and missing.value.service == "sla"
        assert missing.value.path == "/v1/handoffs/ERP%2FPO%234711"
        with pytest.raises(BatonError) as gateway:
            client.map_versions()
    assert gateway.value.problem.status == 502
    assert gateway.value.problem.detail == "<html>bad gateway</html>"


# --------------------------------------------------------------------------- the command


def test_baton_help_lists_every_command() -> None:
    baton = Path(sys.executable).parent / "baton"
    shown = subprocess.run(
        [str(baton), "--help"], capture_output=True, text=True, check=True, env={"COLUMNS": "200"}
    ).stdout
    commands = ("post", "status", "case", "open", "at-risk", "overdue", "closed", "rejections")
    for command in commands:
        assert f" {command} " in shown
    assert " map " in shown and " health " in shown
    sub = run("map", "--help").stdout
    for command in ("check", "validate", "show", "reload", "versions"):
        assert f" {command} " in sub


def test_urls_and_key_come_from_options_or_the_environment(
    served: Served,
) -> None:
    empty = {"view": "open", "count": 0, "truncated": False, "items": []}
    served.handler = lambda r: httpx.Response(200, json=empty)
    assert run("open").exit_code == 0
    assert str(served.requests[-1].url).startswith(Urls().sla + "/v1/handoffs?view=open")
    assert served.requests[-1].headers["authorization"] == "Bearer baton-dev-key-not-for-production"
    env = {"BATON_SLA_URL": "http://sla.example:9003/", "BATON_API_KEY": "from-env-0123456789"}
    assert run("overdue", "--from", "sales", "--priority", "P1", env=env).exit_code == 0
    assert served.requests[-1].url.host == "sla.example" and served.requests[-1].url.port == 9003
    assert (
        served.requests[-1].url.params["view"] == "overdue"
        and served.requests[-1].url.params["from"] == "sales"
    )
    assert served.requests[-1].url.params["priority"] == "P1"
    assert served.requests[-1].headers["authorization"] == "Bearer from-env-0123456789"
    given = run("--sla-url", "http://other:1", "--key", "opt-key-0123456789", "at-risk", env=env)
    assert given.exit_code == 0 and served.requests[-1].url.host == "other"
    assert served.requests[-1].headers["authorization"] == "Bearer opt-key-0123456789"


STATUS = {
    "handoff_id": "demo-1",
    "case_id": "INC-1001",
    "kind": "incident",
    "from": "service-desk",
    "to": "it-l2-apps",
    "priority": "P2",
    "state": "open",
    "standard": {
        "route_id": "incident-apps",
        "version": 1,
        "calendar": "be-office",
        "objective": 0.95,
    },
    "breached": False,
    "ever_breached": False,
    "clocks": [
        {
            "clock": "response",
            "cycle": 1,
            "priority": "P2",
            "stage": "running",
            "outcome": None,
            "breached": False,
            "target_seconds": 1800.0,
            "started_at": "2026-11-23T08:30:00Z",
            "deadline": "2026-11-23T09:00:00Z",
            "stopped_at": None,
            "elapsed_business_seconds": 1350.0,
            "elapsed_wall_seconds": 1350.0,
            "paused_business_seconds": 0.0,
            "remaining_business_seconds": 450.0,
            "used_ratio": 0.75,
            "warnings_passed": [50, 75],
        }
    ],
    "cycles": [
        {
            "cycle": 1,
            "started_at": "2026-11-23T08:30:00Z",
            "ended_at": None,
            "ended_by": None,
            "breached": False,
        }
    ],
    "history": [
        {"type": "submitted", "occurred_at": "2026-11-23T08:30:00Z", "event_id": "demo-1-s"}
    ],
    "closed_at": None,
    "as_of": "2026-11-23T08:52:30Z",
    "updated_at": "2026-11-23T08:30:00Z",
}


def test_status_prints_a_table_or_the_services_json(served: Served) -> None:
    served.handler = lambda r: httpx.Response(200, json=STATUS)
    table = run("status", "demo-1")
    assert table.exit_code == 0, table.stdout
    for text in (
        "Handoff demo-1",
        "service-desk → it-l2-apps",
        "incident-apps v1, be-office",
        "response",
        "2026-11-23 09:00:00Z",
        "7m30s",
        "75%",
        "demo-1-s",
    ):
        assert text in table.stdout
    as_json = run("status", "demo-1", "-o", "json")
    assert json.loads(as_json.stdout) == STATUS  # by alias: "from" and "to", as sla sends it
    assert json.loads(run("-o", "json", "status", "demo-1").stdout) == STATUS
    assert json.loads(run("status", "demo-1", env={"BATON_OUTPUT": "json"}).stdout) == STATUS


def test_a_refusal_prints_each_field_and_reason_and_exits_1(served: Served) -> None:
    bad = ("events[0].data.priority", "Input should be 'P1'")
    served.handler = lambda r: problem(422, "Invalid events", bad)
    event = '{"handoff_id": "h", "type": "reprioritized", "data": {"priority": "P9"}}'
    result = run("post", "-", stdin=event)
    assert result.exit_code == 1
    assert "batch 1 of 1 (from event 0) refused by intake" in result.stderr
    assert "422 Invalid events: nothing was accepted" in result.stderr
    assert "  events[0].data.priority: Input should be 'P1'" in result.stderr
    as_json = run("-o", "json", "post", "-", stdin=event)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stderr)["errors"] == [
        {"field": "events[0].data.priority", "reason": "Input should be 'P1'"}
    ]


def test_post_sends_each_batch_with_its_idempotency_key(served: Served) -> None:
    events = "\n".join(
        json.dumps({"handoff_id": f"h{i}", "type": "accepted", "event_id": f"e{i}"})
        for i in range(5)
    )
    result = run("post", "-", "--batch-size", "2", "-k", "load-7", stdin=events)
    assert result.exit_code == 0, result.stderr
    assert "accepted 5 event(s) in 3 batch(es)" in result.stdout
    assert [r.headers["idempotency-key"] for r in served.requests] == [
        "load-7-1",
        "load-7-2",
        "load-7-3",
    ]
    assert [len(json.loads(r.content)["events"]) for r in served.requests] == [2, 2, 1]
    again = run("-o", "json", "post", "-", stdin=events)
    assert json.loads(again.stdout)["accepted"] == 5
    assert served.requests[-1].headers["idempotency-key"].startswith("baton-")


def test_post_cloudevents_sends_batch_mode_and_names_fields_in_the_whole_input(
    served: Served,
) -> None:
    events = [
        {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "/erp",
            "type": "baton.handoff.accepted",
            "subject": f"h{i}",
        }
        for i in range(3)
    ]

    def cloud(request: httpx.Request) -> httpx.Response:
        if len(served.requests) == 2:
            return problem(422, "Invalid events", ("[0].subject", "String should have ..."))
        (e,) = json.loads(request.content)
        answered = {"event_id": e["id"], "handoff_id": e["subject"], "type": "handoff.accepted"}
        return httpx.Response(202, json={"accepted": 1, "events": [answered]})

    served.handler = cloud
    lines = "\n".join(json.dumps(e) for e in events)
    result = run("post", "-", "--cloudevents", "--batch-size", "1", stdin=lines)
    assert [r.headers["content-type"] for r in served.requests] == [
        "application/cloudevents-batch+json"
    ] * 2
    assert json.loads(served.requests[0].content) == events[:1]  # the array, not {"events"}
    assert result.exit_code == 1
    assert "batch 2 of 3 (from event 1) refused by intake" in result.stderr
    assert "[1].subject: String should have" in result.stderr


CLOSED = {
    "view": "closed",
    "items": [
        {
            "handoff_id": "po-1",
            "case_id": "order-1",
            "kind": "pick-request",
            "from": "sales",
            "to": "warehouse",
            "priority": "P3",
            "state": "completed",
            "closed_at": "2026-11-23T10:00:00Z",
            "outcome": "missed",
        }
    ],
    "next": "abc123",
}


def test_closed_sends_the_filters_and_pages_by_cursor(served: Served) -> None:
    served.handler = lambda r: httpx.Response(200, json=CLOSED)
    shown = run(
        "closed",
        "--from",
        "sales",
        "--outcome",
        "missed",
        "--since",
        "2026-11-23",
        "--until",
        "2026-11-24T00:00:00+01:00",
        "--cursor",
        "xyz",
        "--limit",
        "5",
    )
    assert shown.exit_code == 0, shown.stderr
    params = served.requests[-1].url.params
    assert served.requests[-1].url.path == "/v1/closed"
    assert dict(params) == {
        "from": "sales",
        "since": "2026-11-23T00:00:00+00:00",
        "until": "2026-11-24T00:00:00+01:00",
        "outcome": "missed",
        "cursor": "xyz",
        "limit": "5",
    }
    for text in ("po-1", "sales → warehouse", "2026-11-23 10:00:00Z", "missed", "--cursor abc123"):
        assert text in shown.stdout
    assert json.loads(run("-o", "json", "closed").stdout) == CLOSED
    assert run("closed", "--outcome", "late").exit_code == 2
    assert "not an ISO 8601 instant" in run("closed", "--since", "yesterday").stderr
    run("closed", "--until", "2026-11-23T09:30:00.5Z")
    assert served.requests[-1].url.params["until"] == "2026-11-23T09:30:00.500000+00:00"


def test_bad_input_exits_2_before_anything_is_sent(served: Served, tmp_path: Path) -> None:
    result = run("post", "-", stdin='{"handoff_id": "h", "type": ')
    assert result.exit_code == 2 and "stdin:1:" in result.stderr
    missing = run("post", str(tmp_path / "nowhere.json"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    assert run("open", "--priority", "P9").exit_code == 2
    assert served.requests == []


def test_an_unreachable_service_exits_3_naming_the_setting() -> None:
    result = run("--retries", "0", "--routing-url", "http://127.0.0.1:9", "map", "show")
    assert result.exit_code == 3
    assert "cannot reach routing at http://127.0.0.1:9" in result.stderr
    assert "BATON_ROUTING_URL" in result.stderr


def test_map_check_is_routings_offline_check(tmp_path: Path) -> None:
    valid = run("map", "check", str(MAP))
    assert valid.exit_code == 0 and f"{MAP}: valid (" in valid.stdout
    broken = tmp_path / "map.yaml"
    broken.write_text(MAP.read_text().replace("P1: {response: 2s, resolution: 4s}", "P1: 1d"))
    refused = run("-o", "json", "map", "check", str(broken))
    assert refused.exit_code == 1
    errors = json.loads(refused.stdout)["errors"]
    assert any(".standard.targets.P1" in e["field"] for e in errors)
    table = run("map", "check", str(broken))
    assert table.exit_code == 1 and "error(s)" in table.stdout
