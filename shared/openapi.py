"""Examples in the services' OpenAPI that keep their nulls.

FastAPI publishes its OpenAPI without any null value (`exclude_none`), examples included, so an
example of an answer with a `null` field (`"outcome": null` on a running clock) would be
published without the field, and be invalid against its own schema. An example is therefore
carried as JSON text under an extension key, which survives, and put back as written when the
OpenAPI is assembled (`restore`, called by shared.service). No FastAPI import: the response
models that use these are also the typed client's.
"""

from __future__ import annotations

from typing import Any

import orjson

_EXAMPLE = "x-baton-example"
_EXAMPLES = "x-baton-examples"


def example(value: Any) -> dict[str, Any]:
    """A media type's example (`responses={200: {"content": {"application/json":
    example(...)}}}`)."""
    return {_EXAMPLE: orjson.dumps(value).decode()}


def model_examples(*values: Any) -> dict[str, Any]:
    """A model's examples (`model_config = ConfigDict(json_schema_extra=model_examples(...))`)."""
    return {_EXAMPLES: orjson.dumps(values).decode()}


def restore(node: Any) -> None:
    """Put every carried example back as `example` / `examples`, in place, everywhere."""
    if isinstance(node, dict):
        if isinstance(node.get(_EXAMPLE), str):
            node["example"] = orjson.loads(node.pop(_EXAMPLE))
        if isinstance(node.get(_EXAMPLES), str):
            node["examples"] = orjson.loads(node.pop(_EXAMPLES))
        for value in node.values():
            restore(value)
    elif isinstance(node, list):
        for value in node:
            restore(value)
