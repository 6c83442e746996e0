"""What was accepted at the door and refused downstream: the dead letters, as an upstream
system's integrator needs to see them. Pure.

Every consumer dead-letters what it cannot process to `<topic>.dlq` with the original bytes
and `dlq.*` headers (shared.kafka.failure_headers). Intake follows those topics and indexes
each dead letter by handoff, upstream system (`source`, the posting key), reason code and the
service that refused it, with the reason in words. A replay is recorded as a marker record in
the same dead-letter topic (header `dlq.replay_of`), so "replayed" survives a restart.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

REPLAY_OF = "dlq.replay_of"
REPLAYED_BY = "dlq.replayed_by"


@dataclass(slots=True)
class Rejection:
    """One dead letter."""

    id: str
    """`<dlq topic>:<partition>:<offset>`: stable, and enough to find the record again."""
    dlq_topic: str
    service: str
    code: str
    reason: str
    failed_at: datetime
    topic: str
    """Where the event was read from when it was refused."""
    handoff_id: str
    event_id: str | None
    event_type: str | None
    source: str | None
    case_id: str | None
    occurred_at: str | None
    value: bytes = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = field(repr=False)
    replayed_at: datetime | None = None
    replayed_by: str | None = None

    @property
    def replayable(self) -> bool:
        """Lifecycle events can be posted again; decisions and unreadable bytes cannot."""
        return self.event_type is not None and self.event_type.startswith("handoff.")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-letter record as read from Kafka."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes
    value: bytes
    headers: Sequence[tuple[str, bytes]]


def _text(headers: Mapping[str, bytes], name: str, default: str = "") -> str:
    raw = headers.get(name)
    return raw.decode(errors="replace") if raw is not None else default


def _instant(text: str, fallback_ms: int) -> datetime:
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return datetime.fromtimestamp(fallback_ms / 1000, UTC)


class RejectionIndex:
    """The dead letters intake has read, newest last, bounded to `capacity`."""

    def __init__(self, capacity: int, group_prefix: str = "") -> None:
        self._capacity = capacity
        self._prefix = group_prefix
        self._items: OrderedDict[str, Rejection] = OrderedDict()
        self._replays: dict[str, tuple[datetime, str]] = {}
        self.counts: Counter[tuple[str, str, str]] = Counter()
        """(service, code, source) -> dead letters read since start (for the metric)."""

    def __len__(self) -> int:
        return len(self._items)

    def add(self, letter: DeadLetter) -> Rejection | None:
        """Index one record of a dead-letter topic (a replay marker updates its rejection)."""
        headers = {k: v for k, v in letter.headers}
        rid = f"{letter.topic}:{letter.partition}:{letter.offset}"
        marker = headers.get(REPLAY_OF)
        if marker is not None:
            target = marker.decode(errors="replace")
            when = datetime.fromtimestamp(letter.timestamp_ms / 1000, UTC)
            self._replays[target] = (when, _text(headers, REPLAYED_BY, "unknown"))
            found = self._items.get(target)
            if found is not None:
                found.replayed_at, found.replayed_by = self._replays[target]
            return None
        event: dict[str, object] = {}
        try:
            decoded = orjson.loads(letter.value) if letter.value else {}
            if isinstance(decoded, dict):
                event = decoded
        except orjson.JSONDecodeError:
            pass
        data = event.get("data")

        def text_of(value: object) -> str | None:
            return value if isinstance(value, str) else None

        case_id = text_of(event.get("correlation_id"))
        if case_id is None and isinstance(data, dict):
            case_id = text_of(data.get("case_id"))
        group = _text(headers, "dlq.consumer_group", "unknown")
        rejection = Rejection(
            id=rid,
            dlq_topic=letter.topic,
            service=group.removeprefix(self._prefix),
            code=_text(headers, "dlq.code", "unknown"),
            reason=_text(headers, "dlq.reason", "no reason recorded"),
            failed_at=_instant(_text(headers, "dlq.failed_at"), letter.timestamp_ms),
            topic=_text(headers, "dlq.topic", letter.topic.removesuffix(".dlq")),
            handoff_id=letter.key.decode(errors="replace"),
            event_id=text_of(event.get("event_id")),
            event_type=text_of(event.get("event_type")),
            source=text_of(event.get("source")),
            case_id=case_id,
            occurred_at=text_of(event.get("occurred_at")),
            value=letter.value,
            headers=tuple(letter.headers),
        )
        replay = self._replays.get(rid)
        if replay is not None:
            rejection.replayed_at, rejection.replayed_by = replay
        self._items[rid] = rejection
        self.counts[(rejection.service, rejection.code, rejection.source or "unknown")] += 1
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)
        return rejection

    def get(self, rid: str) -> Rejection | None:
        """One rejection by id."""
        return self._items.get(rid)

    def find(
        self,
        *,
        handoff_id: str | None = None,
        source: str | None = None,
        code: str | None = None,
        service: str | None = None,
        case_id: str | None = None,
        replayed: bool | None = None,
    ) -> Iterator[Rejection]:
        """Rejections matching every filter given, newest first."""
        for item in reversed(self._items.values()):
            if handoff_id is not None and item.handoff_id != handoff_id:
                continue
            if source is not None and item.source != source:
                continue
            if code is not None and item.code != code:
                continue
            if service is not None and item.service != service:
                continue
            if case_id is not None and item.case_id != case_id:
                continue
            if replayed is not None and (item.replayed_at is not None) != replayed:
                continue
            yield item
