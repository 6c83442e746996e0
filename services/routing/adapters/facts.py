"""routing's changelog of open handoffs (`routing.handoffs.v1`): what a completion or a
rejection needs to know of its handoff (case, route, priority, attributes, chain depth).

Delivery semantics: rows are written by the raw consumer with its other outputs, acks=all,
before the raw offsets are committed, on the partition number of the raw record (co-partitioned:
the raw topic and this one have the same partition count, checked at start-up); a handoff that
closes is tombstoned. A partition is restored from its beginning (compacted: one row per open
handoff) the first time the consumer handles one of its records after an assignment, so the
instance that owns a raw partition always knows every handoff opened on it.
"""

from __future__ import annotations

import logging

import orjson

from routing.domain.chain import HandoffFacts
from shared.contracts import Priority
from shared.kafka import TableRow, read_table
from shared.settings import KafkaSettings
from shared.topics import Stream

log = logging.getLogger(__name__)

FORMAT = 1


def encode_facts(facts: HandoffFacts) -> bytes:
    """A compact row: a JSON list, format number first."""
    return orjson.dumps(
        [
            FORMAT,
            facts.case_id,
            facts.kind,
            facts.from_process,
            facts.to_process,
            facts.priority.value,
            facts.route_id,
            dict(facts.attributes),
            facts.root,
            facts.depth,
        ]
    )


def decode_facts(raw: bytes) -> HandoffFacts:
    """The facts of a row; ValueError when it is not one."""
    try:
        row = orjson.loads(raw)
        version, case_id, kind, origin, receiver, priority, route_id, attrs, root, depth = row
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"not a handoff row: {exc}") from exc
    if version != FORMAT or not isinstance(attrs, dict):
        raise ValueError(f"unknown handoff row format {version!r}")
    return HandoffFacts(
        case_id=str(case_id),
        kind=str(kind),
        from_process=str(origin),
        to_process=str(receiver),
        priority=Priority(priority),
        route_id=str(route_id),
        attributes=attrs,
        root=str(root),
        depth=int(depth),
    )


class FactsTopic:
    """Reads and writes routing's handoff changelog."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self.topic = kafka.topics.name(Stream.HANDOFFS)

    async def load(self, partition: int) -> dict[str, HandoffFacts]:
        """Every open handoff of one partition (raises KafkaUnavailable)."""
        table = await read_table(self._kafka, self.topic, [partition])
        out: dict[str, HandoffFacts] = {}
        unreadable = 0
        for key, value in table.items():
            if value is None:
                continue
            try:
                out[key.decode()] = decode_facts(value)
            except (ValueError, UnicodeDecodeError):
                unreadable += 1
        if unreadable:
            log.warning("%s[%d]: %d unreadable rows skipped", self.topic, partition, unreadable)
        return out

    def row(self, handoff_id: str, facts: HandoffFacts | None, partition: int) -> TableRow:
        """The row recording `facts` (None: the handoff closed, a tombstone)."""
        value = None if facts is None else encode_facts(facts)
        return TableRow(self.topic, handoff_id.encode(), value, partition)
