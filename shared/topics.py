"""The one registry of Kafka topics: names, partitions, configs. Nobody types topic strings.

Names follow `<domain>.<entity>.v<N>`; dead letters are `<topic>.dlq`. A prefix (from
settings) namespaces a whole deployment, which is how each integration test gets fresh topics.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from enum import StrEnum


class Stream(StrEnum):
    """Every stream Baton writes, by its logical name."""

    RAW = "handoff.events.v1"
    """Lifecycle events as upstream systems posted them (intake -> routing); key handoff id."""
    ROUTED = "handoff.routed.v1"
    """Lifecycle events with receiver and service standard attached (routing -> sla, metrics)."""
    DECISIONS = "sla.decisions.v1"
    """SLA decisions: warning, met, missed, retracted, stopped (sla -> metrics, routing)."""
    STATUS = "sla.status.v1"
    """Compacted table: the SLA status of every handoff (sla -> metrics); tombstone = forgotten."""
    SLA_STATE = "sla.state.v1"
    """Compacted changelog of the sla service's own state; co-partitioned with ROUTED."""
    PROCESS_MAP = "routing.processmap.v1"
    """Compacted: the process map routing applies, one record per published version."""
    HANDOFFS = "routing.handoffs.v1"
    """Compacted changelog of what routing knows of each open handoff (case, route, priority,
    attributes, chain depth): co-partitioned with RAW, keyed by handoff id, tombstoned when
    the handoff closes. How a completion finds the handoff's route and next step."""
    NOTIFICATIONS = "routing.notifications.v1"
    """routing's outbox of webhook notifications: requests (key the notification id), retry
    states (`<id>/retry`), sent or dead markers (`<id>/done`) and cancellations, each on the
    partition of its handoff. Compacted so every key keeps its last state, and deleted after
    NOTIFICATION_RETENTION_MS so markers of long-sent notifications do not pile up."""
    METRICS_STATE = "metrics.state.v1"
    """Compacted changelog of the metrics service's totals: one record per shard and pair,
    written in the same transaction as the metrics consumer's offsets."""


COMPACTED = {
    Stream.STATUS,
    Stream.SLA_STATE,
    Stream.PROCESS_MAP,
    Stream.HANDOFFS,
    Stream.METRICS_STATE,
}
SINGLE_PARTITION = {Stream.PROCESS_MAP}
DLQ_SOURCES = (Stream.RAW, Stream.ROUTED, Stream.DECISIONS)
"""Streams whose poison records are dead-lettered (events an upstream system or service sent:
intake indexes them for the rejections API and replays)."""
DEAD_NOTIFICATIONS = Stream.NOTIFICATIONS
"""Its dead-letter topic holds the notifications given up after their retries: not events to
replay into the pipeline, so not among DLQ_SOURCES."""
NOTIFICATION_RETENTION_MS = 30 * 86400_000
"""30 days: far beyond the longest wait of a notification (service hours after a long
holiday, escalation steps at most 80 business hours after a breach, retries of hours)."""
HISTORY_SOURCES = (Stream.ROUTED, Stream.DECISIONS)
"""The streams the metrics service's report store is built from: kept for the history's
retention (not the broker's 7-day default), so a lost store file is rebuilt by replaying them."""
DEFAULT_HISTORY_RETENTION_DAYS = 400
"""A year of reports plus a month to spare."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1


@dataclass(frozen=True)
class Topics:
    """Concrete topic names for one deployment (prefix), partition count and replication."""

    prefix: str = ""
    partitions: int = 6
    history_retention_days: int = DEFAULT_HISTORY_RETENTION_DAYS
    replication_factor: int = 1
    min_insync_replicas: int = 1

    def name(self, stream: Stream) -> str:
        """The topic name of a stream."""
        return f"{self.prefix}{stream.value}"

    def dlq(self, stream: Stream) -> str:
        """The dead-letter topic of a stream."""
        return f"{self.name(stream)}.dlq"

    def stream_of(self, topic: str) -> Stream:
        """The stream a concrete topic name belongs to (KeyError for a foreign topic)."""
        if topic.startswith(self.prefix):
            with contextlib.suppress(ValueError):
                return Stream(topic[len(self.prefix) :])
        raise KeyError(f"{topic!r} is no topic of this deployment (prefix {self.prefix!r})")

    def dlq_of(self, topic: str) -> str:
        """The dead-letter topic of a consumed topic, given by its concrete name."""
        return self.dlq(self.stream_of(topic))

    def specs(self) -> list[TopicSpec]:
        """Every topic with its partitions, replication and configs, as `ensure_topics`
        creates them. Every topic -- dead letters included -- gets the same replication and
        `min.insync.replicas`: with acks=all a write is acknowledged once that many replicas
        have it, so it survives the loss of all but one of them."""
        replicated = {"min.insync.replicas": str(self.min_insync_replicas)}
        rf = self.replication_factor
        out: list[TopicSpec] = []
        for stream in Stream:
            configs = dict(replicated)
            if stream in COMPACTED:
                # Small segments and a low dirty ratio let the cleaner actually compact state
                # topics on a small box; min.compaction.lag keeps fresh updates readable.
                configs |= {
                    "cleanup.policy": "compact",
                    "segment.ms": "600000",
                    "min.cleanable.dirty.ratio": "0.1",
                    "delete.retention.ms": "86400000",
                }
            if stream in HISTORY_SOURCES:
                configs |= {"retention.ms": str(self.history_retention_days * 86400_000)}
            if stream is Stream.NOTIFICATIONS:
                configs = {
                    **replicated,
                    "cleanup.policy": "compact,delete",
                    "retention.ms": str(NOTIFICATION_RETENTION_MS),
                    "segment.ms": "3600000",
                    "min.cleanable.dirty.ratio": "0.1",
                    "delete.retention.ms": "86400000",
                }
            parts = 1 if stream in SINGLE_PARTITION else self.partitions
            out.append(TopicSpec(self.name(stream), parts, configs, rf))
        out.extend(
            TopicSpec(self.dlq(s), 1, {**replicated, "retention.ms": str(30 * 86400_000)}, rf)
            for s in (*DLQ_SOURCES, DEAD_NOTIFICATIONS)
        )
        return out
