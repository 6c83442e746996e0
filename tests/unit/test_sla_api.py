"""sla's HTTP API without a broker: what a query string may say."""

from __future__ import annotations

import httpx
import pytest

from builders import ADMIN_KEYS, AUTH
from shared.settings import KafkaSettings
from sla.main import create_app
from sla.settings import Settings


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = create_app(Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:1"), api_keys=ADMIN_KEYS))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://sla", headers=AUTH)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0.5", "ISO 8601"),  # pydantic alone would read a number as Unix seconds
        ("1732000000", "ISO 8601"),
        ("2026-11-21T00:00", "UTC offset"),
        ("yesterday", "datetime"),
    ],
)
async def test_a_period_bound_that_is_not_an_iso_timestamp_with_offset_is_a_422(
    client: httpx.AsyncClient, value: str, why: str
) -> None:
    r = await client.get("/v1/closed", params={"until": value})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    (error,) = r.json()["errors"]
    assert error["field"].endswith("until") and why in error["reason"]


async def test_a_period_with_offsets_lists_closed_handoffs(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/v1/closed", params={"since": "2026-11-01T00:00Z", "until": "2026-12-01T00:00+01:00"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
