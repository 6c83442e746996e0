"""Time as a dependency: no code reads the wall clock directly, it is handed a `Clock`.

`SystemClock` is the real one; `FakeClock` is advanced by tests, and sleeping on it wakes up
exactly when a test moves time past the wake-up instant (Temporal-style time skipping).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    async def sleep_until(self, instant: datetime) -> None:
        """Return once `now() >= instant` (at once if it already is)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current UTC instant."""
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime) -> None:
        """Sleep on the event loop's monotonic clock until the wall clock reaches `instant`."""
        while True:
            delay = (instant - self.now()).total_seconds()
            if delay <= 0:
                return
            # Re-check after waking: the wall clock may have been stepped while we slept.
            await asyncio.sleep(min(delay, 60.0))


class FakeClock:
    """A clock that only moves when told to; sleepers wake when time passes their instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        """The fake current instant."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to `instant` (never backwards) and wake every sleeper that is due."""
        if instant < self._now:
            raise ValueError("a FakeClock never goes backwards")
        self._now = instant
        while self._sleepers and self._sleepers[0][0] <= instant:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def wake_ups(self) -> list[datetime]:
        """The instants sleepers wait for, soonest first (a test sees what is scheduled)."""
        return sorted(at for at, _, fut in self._sleepers if not fut.done())

    def advance(self, delta: timedelta) -> None:
        """Move time forward by `delta`."""
        self.set(self._now + delta)

    async def sleep_until(self, instant: datetime) -> None:
        """Wait until a test moves time to `instant` or beyond."""
        if instant <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (instant, next(self._seq), fut))
        await fut
