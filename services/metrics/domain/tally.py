"""The event-driven series of one supplier->customer pair: their shapes, their values, their
changelog encoding, and the series budget.

A `PairTally` holds every counter, summary and histogram value of one pair. It is the unit of
the metrics service's changelog (`metrics.state.v1`, one record per pair, written in the same
Kafka transaction as the consumer offsets), so the totals survive a restart exactly: they are
a function of the committed log, restored on start and continued, never reset.

Series budget (per pair; a series exists only once what it counts has occurred, but for the
outcomes of the clocks a pair's priority has targets for, created at 0 when its first handoff of
that priority opens, so `increase()` sees the first miss; P = priorities in use, M = milestones
with targets, D = milestones the routes define):

| family | series |
|---|---|
| handoff_opened_total | P |
| handoff_target_outcomes_total (met and missed together) | 2 x P x M |
| handoff_target_retractions_total | one per retracted outcome that occurred (rare) |
| handoff_duration_seconds (summary: _count, _sum; no priority) | 2 x M |
| handoff_target_usage_ratio (4 buckets + Inf, _count, _sum; no priority) | 7 x M |
| handoff_rework_total | 1 once rework occurred |
| handoff_satisfaction_rating (le 2, 3, 4, Inf; _count, _sum) | 6 once rated |
| handoff_open_items | P |
| handoff_overdue_items, ..._oldest_overdue_deadline_timestamp_seconds | 2 x P x M while overdue |
| handoff_target_seconds | P x M |
| handoff_slo_objective_ratio | D |

A pair at one priority with response and resolution targets, everything occurring but
retractions, has 39 series: the budget is 40 per pair, plus 9 for each further priority in
use (13 while its clocks are overdue). `tests/ops/test_metrics_series_budget.py` checks it on the
exposition, `promtool check metrics` included.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from metrics.domain.catalog import OUTCOMES, Pair
from metrics.domain.effects import Effect, Family

USAGE_BUCKETS = (0.5, 0.9, 1.0, 2.0)
"""Business time used / target: comfortably in time, a near miss (0.9-1.0), on time (le 1.0
exactly), late up to twice the target, later."""
RATING_BUCKETS = (2.0, 3.0, 4.0)
"""Ratings 1-5: poor (<= 2), fair, good, excellent (only in +Inf)."""


class Kind(StrEnum):
    COUNTER = "counter"
    SUMMARY = "summary"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class Shape:
    """How a family keeps its values: [value] for a counter, [count, sum] for a summary,
    [count per bucket..., sum] for a histogram (the +Inf bucket last, not cumulative)."""

    kind: Kind
    buckets: tuple[float, ...] = ()

    @property
    def width(self) -> int:
        if self.kind is Kind.COUNTER:
            return 1
        if self.kind is Kind.SUMMARY:
            return 2
        return len(self.buckets) + 2

    def bucket(self, value: float) -> int:
        """The (0-based) bucket a histogram observation falls in (le is inclusive)."""
        return bisect.bisect_left(self.buckets, value)


SHAPES: Mapping[Family, Shape] = {
    Family.OPENED: Shape(Kind.COUNTER),
    Family.OUTCOMES: Shape(Kind.COUNTER),
    Family.RETRACTIONS: Shape(Kind.COUNTER),
    Family.REWORK: Shape(Kind.COUNTER),
    Family.DURATION: Shape(Kind.SUMMARY),
    Family.USAGE: Shape(Kind.HISTOGRAM, USAGE_BUCKETS),
    Family.SATISFACTION: Shape(Kind.HISTOGRAM, RATING_BUCKETS),
}

Series = tuple[Family, tuple[str, ...]]
"""(family, label values): one exposed child."""

FORMAT = 1


class CorruptTally(ValueError):
    """A changelog record that is not a pair's tally."""


class PairTally:
    """Every event-driven value of one pair."""

    __slots__ = ("pair", "values")

    def __init__(self, pair: Pair, values: dict[Series, list[float]] | None = None) -> None:
        self.pair = pair
        self.values: dict[Series, list[float]] = values if values is not None else {}

    def copy(self) -> PairTally:
        return PairTally(self.pair, {k: list(v) for k, v in self.values.items()})

    def _slot(self, family: Family, labels: tuple[str, ...]) -> list[float]:
        slot = self.values.get((family, labels))
        if slot is None:
            slot = self.values[(family, labels)] = [0.0] * SHAPES[family].width
        return slot

    def apply(self, effect: Effect) -> None:
        """Count one effect. A decided clock gets both outcomes (the other at 0), so its
        error ratio is 0, not empty, while nothing is missed."""
        if tuple(effect.labels[:2]) != self.pair:
            raise ValueError(f"{effect} is not of pair {self.pair}")
        shape = SHAPES[effect.family]
        if effect.family is Family.OUTCOMES:
            for outcome in OUTCOMES:
                self._slot(Family.OUTCOMES, (*effect.labels[:-1], outcome))
        slot = self._slot(effect.family, effect.labels)
        if shape.kind is Kind.COUNTER:
            slot[0] += effect.value
        elif shape.kind is Kind.SUMMARY:
            slot[0] += 1
            slot[1] += effect.value
        else:
            slot[shape.bucket(effect.value)] += 1
            slot[-1] += effect.value

    def __iter__(self) -> Iterator[tuple[Series, list[float]]]:
        return iter(self.values.items())

    def encode(self) -> bytes:
        """The changelog value: JSON, format-versioned."""
        rows = [[family.value, list(labels), values] for (family, labels), values in self]
        return json.dumps({"format": FORMAT, "series": rows}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, pair: Pair, data: bytes) -> PairTally:
        """A tally from its changelog value; CorruptTally when it is not one."""
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                raise CorruptTally(f"unknown tally format {doc.get('format')!r}")
            values: dict[Series, list[float]] = {}
            for name, labels, numbers in doc["series"]:
                family = Family(name)
                key = (family, tuple(str(v) for v in labels))
                if key[1][:2] != pair or len(numbers) != SHAPES[family].width:
                    raise CorruptTally(f"series {name}{labels} does not fit pair {pair}")
                floats = [float(n) for n in numbers]
                if not all(math.isfinite(n) and n >= 0 for n in floats[:-1] or floats):
                    raise CorruptTally(f"series {name}{labels} has negative or odd values")
                values[key] = floats
        except CorruptTally:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CorruptTally(f"unreadable tally: {exc}") from exc
        return cls(pair, values)


def changelog_key(shard: str, pair: Pair) -> bytes:
    """`<shard>/<from>\\x1f<to>`: the shard layout is part of the key, so a deployment that
    changes its number of shards never mistakes another layout's totals for its own."""
    return f"{shard}/{pair[0]}\x1f{pair[1]}".encode()


def pair_of_key(shard: str, key: bytes) -> Pair | None:
    """The pair of a changelog key of this shard layout, None for any other key."""
    text = key.decode(errors="replace")
    head, sep, rest = text.partition("/")
    if not sep or head != shard:
        return None
    f, sep, t = rest.partition("\x1f")
    return (f, t) if sep else None
