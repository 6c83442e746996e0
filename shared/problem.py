"""The body of every 4xx/5xx answer of every service: RFC 9457 problem details with the bad
fields named (`application/problem+json`). Pydantic only, so a client reads it without
importing FastAPI; shared.http builds the answers."""

from __future__ import annotations

from pydantic import BaseModel


class FieldError(BaseModel):
    """One bad field and why."""

    field: str
    reason: str


class Problem(BaseModel):
    """The body of every 4xx/5xx answer."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = []
