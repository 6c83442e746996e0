"""The notification outbox as this instance holds it: what is pending, when each is due, what
was delivered or given up, what was cancelled. Pure.

Built from the records of the outbox partitions this instance owns (`routing.notifications.v1`,
read from their beginning on every assignment): a request makes a notification pending, due at
its `not_before`; a retry record moves it to its next attempt; a delivered or dead-lettered
marker ends it for good (a request arriving again afterwards -- a redelivered decision -- is
ignored); a cancellation drops the pending notifications of its handoff's clock and cycle
decided at or before it (rejections stand). Only partitions that are caught up are scheduled:
a notification is never sent before the marker that says it was sent already could be read.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.events import (
    NotificationDeadLetteredV1,
    NotificationDeliveredV1,
    NotificationReason,
    NotificationRequestedV1,
    NotificationRetriedV1,
    NotificationsCancelledV1,
)

KEEP = 100_000
"""Markers and cancellations remembered per partition: a redelivered decision comes back
within seconds, not after a hundred thousand more notifications of the same partition."""

RECENT = 1_000
"""Finished notifications whose outcome is shown (GET /v1/notifications), per partition."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a failing notification is tried: exponential backoff."""

    attempts: int = 10
    first: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=15)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (5 s, 10 s, 20 s, ... up to cap)."""
        delay: timedelta = self.first * (2 ** min(max(attempts - 1, 0), 30))
        return min(delay, self.cap)


@dataclass(slots=True)
class Pending:
    """A notification waiting for its next attempt."""

    request: NotificationRequestedV1
    partition: int
    due: datetime
    attempts: int = 0
    last_error: str = ""
    """Why the last attempt failed (empty before the first failure)."""


@dataclass(frozen=True, slots=True)
class Finished:
    """A notification that is over: delivered (the receiver answered 2xx) or dead-lettered."""

    notification_id: str
    handoff_id: str
    reason: NotificationReason | None  # None: its request was not read (compacted away)
    team: str
    delivered: bool
    attempts: int
    at: datetime
    status: int | None = None
    code: str = ""
    error: str = ""


@dataclass(slots=True)
class _Partition:
    open: bool = False
    pending: dict[str, Pending] = field(default_factory=dict)
    done: OrderedDict[str, None] = field(default_factory=OrderedDict)
    cancels: OrderedDict[str, list[NotificationsCancelledV1]] = field(default_factory=OrderedDict)
    recent: deque[Finished] = field(default_factory=lambda: deque(maxlen=RECENT))


def _cancels(cancel: NotificationsCancelledV1, request: NotificationRequestedV1) -> bool:
    return (
        request.reason is not NotificationReason.REJECTION
        and request.handoff_id == cancel.handoff_id
        and (cancel.clock is None or cancel.clock is request.clock)
        and (cancel.cycle is None or cancel.cycle == request.cycle)
        and request.decided_at <= cancel.until
    )


def _remember(seen: OrderedDict[str, None], key: str) -> None:
    seen[key] = None
    seen.move_to_end(key)
    while len(seen) > KEEP:
        seen.popitem(last=False)


class Outbox:
    """The pending notifications of the owned partitions, and when the next one is due."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._where: dict[str, int] = {}  # notification id -> partition
        self.in_flight: set[str] = set()

    # ------------------------------------------------------------------ partitions

    def assign(self, partition: int) -> None:
        """A partition is ours from now on: its state is rebuilt from its first record."""
        self.drop(partition)
        self._partitions[partition] = _Partition()

    def open(self, partition: int) -> None:
        """The partition is restored: its pending notifications may be sent."""
        part = self._partitions.get(partition)
        if part is None:
            return
        part.open = True
        for item in part.pending.values():
            self._push(item)

    def drop(self, partition: int) -> None:
        """The partition is another member's now: forget it."""
        part = self._partitions.pop(partition, None)
        if part is not None:
            for nid in part.pending:
                self._where.pop(nid, None)

    def is_open(self, partition: int) -> bool:
        """True once the partition is restored and ours."""
        part = self._partitions.get(partition)
        return part is not None and part.open

    # ------------------------------------------------------------------ records

    def requested(self, partition: int, request: NotificationRequestedV1) -> bool:
        """A request: pending unless it was delivered, given up or cancelled already."""
        part = self._partitions.get(partition)
        nid = request.notification_id
        if part is None or nid in part.done:
            return False
        cancels = part.cancels.get(request.handoff_id, ())
        if any(_cancels(c, request) for c in cancels):
            return False
        item = part.pending.get(nid)
        if item is None:
            item = part.pending[nid] = Pending(request, partition, request.not_before)
            self._where[nid] = partition
        else:
            item.request = request  # the same request again (a redelivery): its attempts stay
        if part.open:
            self._push(item)
        return True

    def retried(self, partition: int, retry: NotificationRetriedV1) -> None:
        """A failed attempt: the next one is due at `next_attempt_at`."""
        part = self._partitions.get(partition)
        item = part.pending.get(retry.notification_id) if part is not None else None
        if item is None or retry.attempts < item.attempts:
            return
        item.attempts, item.due = retry.attempts, retry.next_attempt_at
        item.last_error = retry.error
        if part is not None and part.open:
            self._push(item)

    def finished(
        self, partition: int, marker: NotificationDeliveredV1 | NotificationDeadLetteredV1
    ) -> None:
        """Delivered or given up: never again (the outcome is kept among the recent ones)."""
        part = self._partitions.get(partition)
        nid = marker.notification_id
        if part is None or nid in part.done:
            return
        item = part.pending.pop(nid, None)
        self._where.pop(nid, None)
        _remember(part.done, nid)
        request = item.request if item is not None else None
        if isinstance(marker, NotificationDeliveredV1):
            at, status, code, error = marker.delivered_at, marker.status, "", ""
        else:
            at, status, code, error = marker.dead_at, None, marker.code, marker.error
        part.recent.append(
            Finished(
                notification_id=nid,
                handoff_id=request.handoff_id if request is not None else "",
                reason=request.reason if request is not None else None,
                team=request.team if request is not None else "",
                delivered=status is not None,
                attempts=marker.attempts,
                at=at,
                status=status,
                code=code,
                error=error,
            )
        )

    def cancelled(self, partition: int, cancel: NotificationsCancelledV1) -> list[str]:
        """Drop what the cancellation covers; the ids dropped (in flight ones finish)."""
        part = self._partitions.get(partition)
        if part is None:
            return []
        kept = part.cancels.setdefault(cancel.handoff_id, [])
        if cancel not in kept:
            kept.append(cancel)
        part.cancels.move_to_end(cancel.handoff_id)
        while len(part.cancels) > KEEP:
            part.cancels.popitem(last=False)
        dropped = [
            nid
            for nid, item in part.pending.items()
            if nid not in self.in_flight and _cancels(cancel, item.request)
        ]
        for nid in dropped:
            del part.pending[nid]
            self._where.pop(nid, None)
        return dropped

    # ------------------------------------------------------------------ scheduling

    def _push(self, item: Pending) -> None:
        heapq.heappush(self._heap, (item.due, next(self._seq), item.request.notification_id))

    def _live(self, due: datetime, nid: str) -> Pending | None:
        partition = self._where.get(nid)
        part = self._partitions.get(partition) if partition is not None else None
        item = part.pending.get(nid) if part is not None else None
        if item is None or part is None or not part.open or item.due != due:
            return None
        return None if nid in self.in_flight else item

    def next_due(self) -> datetime | None:
        """When the next pending notification is due (None: nothing is)."""
        while self._heap:
            due, _, nid = self._heap[0]
            if self._live(due, nid) is not None:
                return due
            heapq.heappop(self._heap)  # stale: delivered, cancelled, moved, or in flight
        return None

    def take_due(self, now: datetime) -> list[Pending]:
        """Every notification due at `now`, marked in flight."""
        out: list[Pending] = []
        while self._heap and self._heap[0][0] <= now:
            due, _, nid = heapq.heappop(self._heap)
            item = self._live(due, nid)
            if item is not None:
                self.in_flight.add(nid)
                out.append(item)
        return out

    def landed(self, notification_id: str) -> None:
        """An attempt is over (its marker or retry record is written and applied)."""
        self.in_flight.discard(notification_id)

    def reschedule(self, item: Pending, attempts: int, due: datetime, error: str = "") -> None:
        """After a failed attempt: the next one at `due` (before its record is read back)."""
        self.in_flight.discard(item.request.notification_id)
        if item.attempts <= attempts:
            item.attempts, item.due = attempts, due
            item.last_error = error or item.last_error
        part = self._partitions.get(item.partition)
        if part is not None and part.open and item.request.notification_id in part.pending:
            self._push(item)

    def pending(self) -> Iterator[Pending]:
        """Every pending notification of the owned partitions."""
        for part in self._partitions.values():
            yield from part.pending.values()

    def recent(self) -> Iterator[Finished]:
        """The recently finished notifications of the owned partitions."""
        for part in self._partitions.values():
            yield from part.recent

    def partitions(self) -> dict[int, bool]:
        """The owned partitions, each with whether it is restored."""
        return {p: part.open for p, part in sorted(self._partitions.items())}
