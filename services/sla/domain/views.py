"""Small conversions the read side shares."""

from __future__ import annotations

from datetime import datetime

from shared.calendar import from_us

US = 1_000_000


def optional_time(value: int | None) -> datetime | None:
    """Microseconds since the epoch as a UTC datetime, None stays None."""
    return None if value is None else from_us(value)
