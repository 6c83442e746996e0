"""Every service's OpenAPI tells the truth: each operation has a summary and a description,
examples of its request (required parameters, bodies) and of its answers, and documents the
errors it can give as application/problem+json with an example; every example is valid
against its own schema; the `data` of each posted event type is its own schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator

from builders import ADMIN_KEYS
from shared.clock import FakeClock
from shared.events import LifecycleName

PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


def app_of(service: str) -> FastAPI:
    """The service's app as `create_app` builds it (no Kafka is reached until its lifespan)."""
    from datetime import UTC, datetime

    clock = FakeClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    if service == "intake":
        from intake.main import create_app as intake_app
        from intake.settings import Settings as IntakeSettings

        return intake_app(IntakeSettings(api_keys=ADMIN_KEYS), clock)
    if service == "routing":
        from routing.main import create_app as routing_app
        from routing.settings import Settings as RoutingSettings

        return routing_app(RoutingSettings(api_keys=ADMIN_KEYS), clock)
    if service == "sla":
        from sla.main import create_app as sla_app
        from sla.settings import Settings as SlaSettings

        return sla_app(SlaSettings(api_keys=ADMIN_KEYS), clock)
    from metrics.main import create_app as metrics_app
    from metrics.settings import Settings as MetricsSettings

    return metrics_app(MetricsSettings(api_keys=ADMIN_KEYS), clock)


SERVICES = ("intake", "routing", "sla", "metrics")
SPECS: dict[str, dict[str, Any]] = {}


def spec_of(service: str) -> dict[str, Any]:
    if service not in SPECS:
        SPECS[service] = app_of(service).openapi()
    return SPECS[service]


def operations() -> Iterator[tuple[str, str, str]]:
    for service in SERVICES:
        for path, methods in spec_of(service)["paths"].items():
            for method in methods:
                yield service, method, path


OPERATIONS = list(operations())
IDS = [f"{s}:{m.upper()} {p}" for s, m, p in OPERATIONS]


def examples_of(holder: dict[str, Any]) -> list[Any]:
    """The examples an OpenAPI object gives: `example`, or the values of `examples` (a map
    of named examples, or a list in a schema)."""
    if "example" in holder:
        return [holder["example"]]
    found = holder.get("examples")
    if isinstance(found, dict):
        return [named["value"] for named in found.values()]
    if isinstance(found, list):
        return list(found)
    return []


def assert_valid(example: Any, schema: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    root = {**schema, "components": spec.get("components", {})}
    errors = sorted(Draft202012Validator(root).iter_errors(example), key=lambda e: e.path)
    assert not errors, f"{where}: example invalid: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


@pytest.mark.parametrize(("service", "method", "path"), OPERATIONS, ids=IDS)
def test_every_operation_is_described_with_examples_and_its_errors(
    service: str, method: str, path: str
) -> None:
    spec = spec_of(service)
    operation = spec["paths"][path][method]
    where = f"{service} {method.upper()} {path}"
    assert operation.get("summary"), f"{where}: no summary"
    assert operation.get("description"), f"{where}: no description (the route's docstring)"

    for parameter in operation.get("parameters", []):
        if parameter.get("required"):
            given = examples_of(parameter) or examples_of(parameter.get("schema", {}))
            assert given, f"{where}: parameter {parameter['name']} has no example"
            for example in given:
                assert_valid(example, parameter["schema"], spec, f"{where} {parameter['name']}")

    for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
        given = examples_of(media)
        assert given, f"{where}: request body {media_type} has no example"
        for example in given:
            assert_valid(example, media["schema"], spec, f"{where} body {media_type}")

    responses = operation["responses"]
    answers = [code for code in responses if code.startswith("2")]
    assert answers, f"{where}: no success answer documented"
    for code in answers:
        for media_type, media in responses[code].get("content", {}).items():
            given = examples_of(media)
            assert given, f"{where}: answer {code} {media_type} has no example"
            for example in given:
                assert_valid(example, media.get("schema", {}), spec, f"{where} {code}")

    errors = [code for code in responses if code.isdigit() and int(code) >= 400]
    assert "500" in errors, f"{where}: the unexpected error (500) is not documented"
    if operation.get("security"):
        assert {"401", "403", "429"} <= set(errors), f"{where}: key errors not documented"
    if operation.get("parameters") or operation.get("requestBody"):
        assert "422" in errors, f"{where}: invalid input (422) is not documented"
    for code in errors:
        content = responses[code].get("content", {})
        assert content, f"{where}: error {code} has no body documented"
        if path == "/health/ready" and code == "503":
            continue  # readiness says which checks fail, in its own body
        assert list(content) == [PROBLEM], f"{where}: error {code} is not problem+json"
        media = content[PROBLEM]
        assert media["schema"] == {"$ref": PROBLEM_REF}, f"{where}: error {code} not a Problem"
        (example,) = examples_of(media)
        assert example["status"] == int(code), f"{where}: error {code}'s example says otherwise"
        assert_valid(example, media["schema"], spec, f"{where} {code}")


@pytest.mark.parametrize("service", SERVICES)
def test_no_operation_claims_errors_it_cannot_give(service: str) -> None:
    for path, methods in spec_of(service)["paths"].items():
        for method, operation in methods.items():
            codes = set(operation["responses"])
            if not operation.get("security"):
                assert not codes & {"401", "403", "429"} or path == "/metrics", (path, codes)
            if "requestBody" not in operation:
                assert not codes & {"400", "413", "415"}, (method, path, codes)


def test_each_posted_event_types_data_is_its_own_schema_chosen_by_type() -> None:
    spec = spec_of("intake")
    schemas = spec["components"]["schemas"]
    batch = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    items = batch["schema"]["properties"]["events"]["items"]
    mapping = items["discriminator"]["mapping"]
    assert items["discriminator"]["propertyName"] == "type"
    assert set(mapping) == set(LifecycleName.__args__)  # type: ignore[attr-defined]
    assert len(items["oneOf"]) == len(mapping)
    for event_type, ref in mapping.items():
        posted = schemas[ref.rsplit("/", 1)[-1]]
        assert posted["properties"]["type"]["const"] == event_type
        data = posted["properties"]["data"]
        data_ref = data.get("$ref") or data["allOf"][0]["$ref"]
        name = data_ref.rsplit("/", 1)[-1]
        assert name == f"Handoff{event_type.capitalize()}V1", (event_type, name)
        assert schemas[name]["type"] == "object"
    one = spec["paths"]["/v1/handoffs/{handoff_id}/events"]["post"]["requestBody"]
    shown = {e["type"] for e in examples_of(one["content"]["application/json"])}
    assert shown == set(mapping), "an example of every event type on the one-event endpoint"


def test_problem_is_described_as_the_shape_of_every_error() -> None:
    for service in SERVICES:
        problem = spec_of(service)["components"]["schemas"]["Problem"]
        assert "application/problem+json" in problem["description"]
        assert set(problem["properties"]) == {"type", "title", "status", "detail", "errors"}
        names = spec_of(service)["components"]["schemas"]
        assert "HTTPValidationError" not in names and "ValidationError" not in names


def test_the_cloudevents_bodies_shown_are_the_ones_intake_maps() -> None:
    from intake.domain import cloudevents

    spec = spec_of("intake")
    content = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    (one,) = examples_of(content[cloudevents.STRUCTURED])
    (many,) = examples_of(content[cloudevents.BATCH])
    assert cloudevents.structured(one).event_id == one["id"]
    assert [e.event_id for e in cloudevents.batch(many)] == [e["id"] for e in many]
    schema = content[cloudevents.STRUCTURED]["schema"]
    union = spec["components"]["schemas"]["CloudEvent"]
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == {f"baton.handoff.{n}" for n in LifecycleName.__args__}  # type: ignore[attr-defined]
    for kind, ref in mapping.items():
        variant = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert set(variant["required"]) == {"specversion", "id", "source", "type"}
        assert variant["properties"]["type"]["const"] == kind
        data = variant["properties"]["data"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]
        assert data == f"Handoff{kind.removeprefix('baton.handoff.').capitalize()}V1"
    wrong = {**one, "data": {**one["data"], "priority": "P9"}}
    with pytest.raises(AssertionError):
        assert_valid(wrong, schema, spec, "a submitted CloudEvent with priority P9")
