"""Retry with exponential backoff, written once.

Every "Kafka is not reachable yet, try again" loop in Baton goes through here, so the delays,
the cap and the log line are the same everywhere: a service starts while the broker is down
and keeps trying, never spinning and never giving up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Backoff:
    """Delays that double after each failure, up to a cap."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    async def wait(self) -> None:
        """Sleep the current delay, then double it (up to the cap)."""
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)

    def reset(self) -> None:
        """Back to the first delay (after a success)."""
        self.delay = self.first


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    *,
    on: tuple[type[BaseException], ...],
    what: str,
    first: float = 0.2,
    cap: float = 5.0,
) -> T:
    """The result of `attempt()`, called again after a growing delay while it raises one of
    `on` (anything else propagates). `what` names the attempt in the warning logged."""
    backoff = Backoff(first, cap)
    while True:
        try:
            return await attempt()
        except on as exc:
            # Bounded: an exception can carry a whole payload in its text.
            reason = (str(exc) or type(exc).__name__)[:300]
            log.warning("%s failed (%s); retrying in %.1fs", what, reason, backoff.delay)
            await backoff.wait()
