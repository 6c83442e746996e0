"""Outbound webhooks: POST a notification's JSON, signed, and say how it went.

Each request carries `X-Baton-Signature: sha256=<hex>` (HMAC-SHA256 of the exact body with the
receiver's secret), `Idempotency-Key` (the notification id: the same on every attempt, so a
receiver drops what it already has), `X-Baton-Event` (warning, breach, escalation, rejection)
and `X-Baton-Attempt`. A 2xx is delivered; 408, 425, 429 and 5xx, a timeout or a connection
error may pass (retried); any other answer is the receiver's refusal (not retried).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

USER_AGENT = "baton-routing/0.1"
_PASSING = {408, 425, 429}


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Baton-Signature` value of `body`: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one POST went."""

    delivered: bool
    retryable: bool
    status: int | None
    error: str


class WebhookClient:
    """Posts notifications with one shared HTTP client (connection reuse, a timeout)."""

    def __init__(self, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    async def post(
        self, url: str, body: bytes, secret: bytes, headers: Mapping[str, str]
    ) -> Attempt:
        """POST `body` to `url`, signed with `secret`."""
        signed = {
            **headers,
            "Content-Type": "application/json",
            "X-Baton-Signature": signature(secret, body),
        }
        try:
            answer = await self._client.post(url, content=body, headers=signed)
        except httpx.HTTPError as exc:
            return Attempt(False, True, None, f"{type(exc).__name__}: {exc}"[:500])
        status = answer.status_code
        if 200 <= status < 300:
            return Attempt(True, False, status, "")
        retryable = status >= 500 or status in _PASSING
        return Attempt(False, retryable, status, f"HTTP {status}: {answer.text[:300]}")

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()
