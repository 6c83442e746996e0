"""The sla service's own metrics (its /metrics, not the business metrics metrics exposes).

Everything is moved only once the transaction it describes is committed: a decision counted
here is on Kafka. `handoff_breach_detection_delay_seconds` is Baton's one definition of that
family (deadline -> missed decision committed), labelled by the decisions topic and partition.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.calendar import to_us
from shared.kafka import ProcessedCounter

US = 1_000_000
BREACH_DELAY_BUCKETS = (
    0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip


class SlaTelemetry:
    """Counters and histograms of the sla service; also the exactly-once plumbing's Observer."""

    def __init__(self, registry: CollectorRegistry, decisions_topic: str) -> None:
        self._decisions_topic = decisions_topic
        self.processed = ProcessedCounter(registry)
        self.decisions = Counter(
            "handoff_sla_decisions",
            "SLA decisions committed to Kafka, by type.",
            ["type"],
            registry=registry,
        )
        self.breach_delay = Histogram(
            "handoff_breach_detection_delay_seconds",
            "From a deadline to its missed decision being committed to Kafka, by the decisions "
            "partition it was written to.",
            ["topic", "partition"],
            buckets=BREACH_DELAY_BUCKETS,
            registry=registry,
        )
        self.transaction_seconds = Histogram(
            "handoff_sla_transaction_seconds",
            "Duration of one Kafka transaction (a batch or a timer wake-up).",
            buckets=(0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )
        self.unreadable = Counter(
            "handoff_sla_changelog_unreadable",
            "Changelog records that could not be decoded (at the restore, or on the restored "
            "handoff's first use): the handoff is lost.",
            registry=registry,
        )
        self.uncomputable = Counter(
            "handoff_sla_uncomputable",
            "Events dead-lettered, or wake-ups skipped, because a clock could not be computed "
            "on its calendar (a deadline beyond the supported years, no working time).",
            registry=registry,
        )
        self.orphans = Counter(
            "handoff_sla_orphan_events_dead_lettered",
            "Events dead-lettered as unknown-handoff: no opening event (submitted or expected) "
            "of their handoff came within the orphan retention.",
            registry=registry,
        )
        self.restore_seconds = Histogram(
            "handoff_sla_restore_seconds",
            "Time to rebuild one partition's state from its changelog (or catch it up).",
            ["kind"],
            buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=registry,
        )

    # ------------------------------------------------------------------ plumbing's Observer

    def transaction(self, seconds: float) -> None:
        """One transaction committed."""
        self.transaction_seconds.observe(seconds)

    def restored(self, partition: int, seconds: float, records: int, full: bool) -> None:
        """A partition restored (full) or caught up."""
        self.restore_seconds.labels("full" if full else "catch-up").observe(seconds)

    # ------------------------------------------------------------------ the use case's

    def committed(
        self,
        partition: int,
        committed_at: datetime,
        decision_types: Iterable[str],
        missed_deadlines: Iterable[int],
        processed: Iterable[tuple[str, str, str]],
    ) -> None:
        """What one committed transaction decided and processed."""
        for kind, count in Tally(decision_types).items():
            self.decisions.labels(kind).inc(count)
        now = to_us(committed_at)
        delay = self.breach_delay.labels(self._decisions_topic, str(partition))
        for deadline in missed_deadlines:
            delay.observe(max(now - deadline, 0) / US)
        for (topic, event_type, result), count in Tally(processed).items():
            self.processed.counter.labels(topic, event_type, result).inc(count)


class HeldCollector(Collector):
    """`handoff_sla_handoffs{partition}`: handoffs held in memory, read at scrape time."""

    def __init__(self, sizes: Callable[[], Mapping[int, int]]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "handoff_sla_handoffs",
            "Handoffs the sla instance holds in memory (open, and closed within retention).",
            labels=["partition"],
        )
        for partition, size in sorted(self._sizes().items()):
            family.add_metric([str(partition)], size)
        yield family
