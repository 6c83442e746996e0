"""The metric families of OBSERVABILITY.md: names, help texts, labels and buckets.

Event-driven families (counters, summaries, histograms) show committed pair tallies only (see
handlers.py and domain/tally.py, which also has the series budget); state gauges are computed
at scrape time from the status table and the process map, so they never drift after a replay
or a restart. Nothing is pre-created: a series appears once what it counts occurs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from metrics.adapters.exposition import CounterFamily, GaugeLines, HistogramFamily, SummaryFamily
from metrics.domain.catalog import Catalog, PairPriority
from metrics.domain.effects import Effect, Family
from metrics.domain.shards import Shard
from metrics.domain.status import StateView
from metrics.domain.tally import RATING_BUCKETS, USAGE_BUCKETS, PairTally
from shared.clock import Clock

PAIR = ("from_team", "to_team")
PAIR_PRIORITY = (*PAIR, "priority")
PAIR_MILESTONE = (*PAIR, "milestone")
CLOCK = (*PAIR_PRIORITY, "milestone")


class Instruments:
    """The counters, summaries and histograms moved by events, one pair's tally at a time."""

    def __init__(self) -> None:
        self.opened = CounterFamily(
            "handoff_opened",
            "Deliveries that reached the receiving team and started its clocks; one per cycle "
            "(a resubmission after rework opens again).",
            PAIR_PRIORITY,
        )
        self.outcomes = CounterFamily(
            "handoff_target_outcomes",
            "Target outcomes per clock: met when the milestone is reached in time, missed the "
            "moment the deadline passes. One per handoff, clock and cycle; corrections are "
            "counted in handoff_target_retractions_total.",
            (*CLOCK, "outcome"),
        )
        self.retractions = CounterFamily(
            "handoff_target_retractions",
            "Outcomes withdrawn because a late event changed the facts. Counters never go down: "
            'the exact number of misses is handoff_target_outcomes_total{outcome="missed"} - '
            'handoff_target_retractions_total{retracted="missed"} (likewise for met).',
            (*CLOCK, "retracted"),
        )
        self.duration = SummaryFamily(
            "handoff_duration_seconds",
            "Wall-clock time from delivery to the milestone, observed when the clock stops "
            "(in time or late): _sum / _count is the mean (a summary, not a histogram, to keep "
            "two series per pair and milestone).",
            PAIR_MILESTONE,
        )
        self.usage = HistogramFamily(
            "handoff_target_usage_ratio",
            'Business time used / target when the clock stops; le="1.0" counts the handoffs '
            "on time, 0.9-1.0 the near misses. Exemplars carry the handoff id.",
            PAIR_MILESTONE,
            USAGE_BUCKETS,
        )
        self.rework = CounterFamily(
            "handoff_rework",
            "Handoffs returned to the supplier as incomplete or inaccurate (quality defects).",
            PAIR,
        )
        self.satisfaction = HistogramFamily(
            "handoff_satisfaction_rating",
            "The internal customer's satisfaction with a handoff, 1 (poor) to 5 (excellent).",
            PAIR,
            RATING_BUCKETS,
        )
        self._counters = {
            Family.OPENED: self.opened,
            Family.OUTCOMES: self.outcomes,
            Family.RETRACTIONS: self.retractions,
            Family.REWORK: self.rework,
        }
        self._histograms = {Family.USAGE: self.usage, Family.SATISFACTION: self.satisfaction}
        self.families = (
            self.opened,
            self.outcomes,
            self.retractions,
            self.duration,
            self.usage,
            self.rework,
            self.satisfaction,
        )
        self.in_use: set[PairPriority] = set()
        """Every (pair, priority) some event counted: its targets are exposed."""

    def load(self, tally: PairTally) -> None:
        """Expose a pair's committed (or restored) values: every series of the tally."""
        for (family, labels), values in tally:
            counter = self._counters.get(family)
            if counter is not None:
                counter.set(labels, values[0])
                if family in (Family.OPENED, Family.OUTCOMES):
                    self.in_use.add((labels[0], labels[1], labels[2]))
            elif family is Family.DURATION:
                self.duration.set(labels, values[0], values[1])
            else:
                self._histograms[family].set(labels, values[:-1], values[-1])

    def exemplify(self, effects: Iterable[Effect]) -> None:
        """Show the committed observations' handoffs as exemplars of their buckets."""
        for effect in effects:
            family = self._histograms.get(effect.family)
            if family is not None and effect.exemplar is not None:
                family.exemplar(effect.labels, effect.value, effect.exemplar)

    def render(self, openmetrics: bool) -> list[bytes]:
        """Every event-driven family, as cached chunks."""
        return [chunk for family in self.families for chunk in family.render(openmetrics)]


class StateGauges:
    """`handoff_open_items`, `handoff_overdue_items` and the oldest overdue deadline, from the
    status table at scrape time ("now" from the injected clock)."""

    def __init__(self, view: StateView, catalog: Callable[[], Catalog], clock: Clock) -> None:
        self._view = view
        self._catalog = catalog
        self._clock = clock
        self.open_items = GaugeLines(
            "handoff_open_items",
            "Handoffs held by the receiving team now: delivered, and not completed, cancelled "
            "or returned to the supplier.",
            PAIR_PRIORITY,
        )
        self.overdue_items = GaugeLines(
            "handoff_overdue_items",
            "Running or paused clocks past their deadline now (outcome missed, or no outcome "
            "yet and the deadline is before now).",
            CLOCK,
        )
        self.oldest_overdue = GaugeLines(
            "handoff_oldest_overdue_deadline_timestamp_seconds",
            "Deadline (Unix time) of the longest-overdue running or paused clock; absent when "
            "none is overdue. time() - this = how long it has been overdue.",
            CLOCK,
        )

    def render(self, openmetrics: bool) -> list[bytes]:
        """The three gauges at the clock's now."""
        snap = self._view.snapshot(self._catalog(), self._clock.now().timestamp())
        return [
            self.open_items.render(snap.open_items, openmetrics),
            self.overdue_items.render(snap.overdue_items, openmetrics),
            self.oldest_overdue.render(snap.oldest_overdue, openmetrics),
        ]


class CatalogGauges:
    """`handoff_target_seconds` (for the priorities in use) and `handoff_slo_objective_ratio`
    (for every milestone a route defines) of this shard's pairs, from the process map."""

    def __init__(
        self,
        catalog: Callable[[], Catalog],
        shard: Shard,
        in_use: Callable[[], Iterable[PairPriority]],
    ) -> None:
        self._catalog = catalog
        self._shard = shard
        self._in_use = in_use
        self.target = GaugeLines(
            "handoff_target_seconds",
            "Business-time target of a clock from the process map (the strictest among the "
            "pair's routes), for the priorities in use.",
            CLOCK,
        )
        self.objective = GaugeLines(
            "handoff_slo_objective_ratio",
            "Share of handoffs that must meet the target (the strictest objective among the "
            "pair's routes that set the milestone).",
            (*PAIR, "milestone"),
        )
        self._cached_for: tuple[Catalog | None, int] = (None, -1)
        self._cached: tuple[bytes, bytes] = (b"", b"")

    def render(self, openmetrics: bool) -> list[bytes]:
        """Both gauges for the current catalog."""
        catalog = self._catalog()
        in_use = set(self._in_use())
        if self._cached_for[0] is not catalog or self._cached_for[1] != len(in_use):
            owns = self._shard.owns
            targets = [
                (c, catalog.targets[c])
                for c in catalog.combos
                if (c[0], c[1], c[2]) in in_use and owns((c[0], c[1]))
            ]
            objectives = sorted(o for o in catalog.objectives.items() if owns((o[0][0], o[0][1])))
            self._cached = (
                self.target.render(targets, False) + self.objective.render(objectives, False),
                self.target.render(targets, True) + self.objective.render(objectives, True),
            )
            self._cached_for = (catalog, len(in_use))
        return [self._cached[openmetrics]]
