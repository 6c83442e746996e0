"""Process-wide logging: one format, and repeated lines rate-limited.

A broker outage makes aiokafka log every failed connection attempt and every retry loop log
its own attempt; without a bound that is hundreds of megabytes in minutes. `RepeatedLogs` lets
one line per message template through per window and says how many it held back; the state
changes themselves (Kafka gone, Kafka back) are logged by `shared.kafka.BrokerWatch`.
"""

from __future__ import annotations

import logging

from prometheus_client import disable_created_metrics


class RepeatedLogs(logging.Filter):
    """At most one line per message template and logger every `window` seconds; the next line
    after a quiet period says how many like it were suppressed. Keeps an outage from writing
    a log line per retry (aiokafka logs every failed connection attempt)."""

    def __init__(self, window: float = 30.0) -> None:
        super().__init__()
        self._window = window
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Let a record through, or count it as suppressed."""
        key = (record.name, record.levelno, str(record.msg))
        first = self._seen.get(key)
        if first is not None and record.created - first[0] < self._window:
            self._seen[key] = (first[0], first[1] + 1)
            return False
        if first is not None and first[1]:
            record.msg = (
                f"{record.msg} ({first[1]} similar lines suppressed in the last "
                f"{record.created - first[0]:.0f} s)"
            )
        self._seen[key] = (record.created, 0)
        if len(self._seen) > 10_000:
            self._seen.clear()
        return True


def configure_observability(level: str) -> None:
    """Process-wide logging format, repeated lines rate-limited, `_created` series off."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=False
    )
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RepeatedLogs) for f in handler.filters):
            handler.addFilter(RepeatedLogs())
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
    disable_created_metrics()  # type: ignore[no-untyped-call]
