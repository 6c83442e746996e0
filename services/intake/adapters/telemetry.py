"""intake's own metrics: what was accepted, what the door refused and why, the dead letters.

Labels are closed sets or configured names only (event types, refusal reasons, API key names,
the services that dead-letter), never ids.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from intake.domain.rejections import RejectionIndex

REFUSALS = (
    "malformed",
    "body-too-large",
    "invalid",
    "not-idempotent",
    "forbidden",
    "event-too-large",
    "key-reused",
    "key-in-flight",
    "kafka-unavailable",
    "map-not-loaded",
)


class IntakeMetrics:
    """Counters of the door, registered in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "handoff_intake_events",
            "Lifecycle events accepted (written to Kafka, acknowledged), by type and upstream "
            "system (API key name).",
            ["event_type", "source"],
            registry=registry,
        )
        self.refused = Counter(
            "handoff_intake_refused_requests",
            "Requests refused at the door, by reason: nothing of them was accepted.",
            ["reason"],
            registry=registry,
        )
        for reason in REFUSALS:  # pre-initialised: rate() never goes empty
            self.refused.labels(reason)
        # client_python's labels() locks and validates: once per series, not per request
        self._accepted = functools.cache(self.accepted.labels)

    def accept(self, event_types: Iterable[str], source: str) -> None:
        """Count the events of one accepted request (one increment per type, not per event)."""
        for event_type, count in collections.Counter(event_types).items():
            self._accepted(event_type, source).inc(count)

    def refuse(self, reason: str) -> None:
        """Count one refused request."""
        self.refused.labels(reason).inc()


class DeadLetterCollector(Collector):
    """`handoff_dead_letters_total{service, reason, source}` from the rejection index: every
    dead letter in the topics' retention, recounted from Kafka at each start (so the counter
    continues across restarts instead of resetting), and the sizes of the door's tables."""

    def __init__(self, index: RejectionIndex, sizes: Callable[[], dict[str, int]]) -> None:
        self._index = index
        self._sizes = sizes

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        """The families at scrape time."""
        letters = CounterMetricFamily(
            "handoff_dead_letters",
            "Events refused downstream (dead-lettered), by the service that refused them, "
            "reason code and upstream system; see GET /v1/rejections on intake.",
            labels=["service", "reason", "source"],
        )
        for (service, code, source), count in sorted(self._index.counts.items()):
            letters.add_metric([service, code, source], count)
        yield letters
        sizes = GaugeMetricFamily(
            "handoff_intake_table_entries",
            "Entries intake holds in memory, by table.",
            labels=["table"],
        )
        for table, size in self._sizes().items():
            sizes.add_metric([table], size)
        yield sizes
