"""The metric families of OBSERVABILITY.md: names, help texts, labels and buckets.

Event-driven families (counters, histograms) are moved only by committed effects (see
handlers.py); state gauges are computed at scrape time from the status table and the process
map, so they never drift after a replay or a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from metrics.adapters.exposition import CounterFamily, GaugeLines, HistogramFamily
from metrics.domain.catalog import OUTCOMES, Catalog, Pair
from metrics.domain.effects import Effect, Family
from metrics.domain.status import StateView
from shared.clock import Clock

PAIR = ("from_team", "to_team")
PAIR_PRIORITY = (*PAIR, "priority")
CLOCK = (*PAIR_PRIORITY, "milestone")

MINUTE, HOUR, DAY = 60, 3600, 86400
DURATION_BUCKETS = (
    MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR,
    DAY, 2 * DAY, 4 * DAY, 7 * DAY, 14 * DAY, 30 * DAY,
)  # fmt: skip
USAGE_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
RATING_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0)


class Instruments:
    """The counters and histograms moved by events."""

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
        self.duration = HistogramFamily(
            "handoff_duration_seconds",
            "Wall-clock time from delivery to the milestone, observed when the clock stops "
            "(in time or late). Exemplars carry the handoff id.",
            CLOCK,
            DURATION_BUCKETS,
        )
        self.usage = HistogramFamily(
            "handoff_target_usage_ratio",
            'Business time used / target when the clock stops; le="1.0" counts the handoffs '
            "on time. Exemplars carry the handoff id.",
            CLOCK,
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
        self._histograms = {
            Family.DURATION: self.duration,
            Family.USAGE: self.usage,
            Family.SATISFACTION: self.satisfaction,
        }
        self.families = (
            self.opened,
            self.outcomes,
            self.retractions,
            self.duration,
            self.usage,
            self.rework,
            self.satisfaction,
        )

    def apply(self, effect: Effect) -> None:
        """Expose one committed effect."""
        counter = self._counters.get(effect.family)
        if counter is not None:
            counter.inc(effect.labels, effect.value)
        else:
            self._histograms[effect.family].observe(effect.labels, effect.value, effect.exemplar)

    def preinitialise(self, catalog: Catalog, pairs: Sequence[Pair] | None = None) -> None:
        """Create every catalog combination (of the given pairs only, if any) at 0, so ratios
        and rate() never go empty.

        Series are never removed while the process runs (a process dropped from the map keeps
        its counts until the next restart); combinations without a target are not created.
        """
        chosen = catalog.pairs if pairs is None else pairs
        only = None if pairs is None else set(pairs)
        for key in catalog.pair_priorities(chosen):
            self.opened.ensure(key)
        for combo in catalog.combos:
            if only is not None and (combo[0], combo[1]) not in only:
                continue
            for outcome in OUTCOMES:
                self.outcomes.ensure((*combo, outcome))
                self.retractions.ensure((*combo, outcome))
            self.duration.ensure(combo)
            self.usage.ensure(combo)
        for pair in chosen:
            self.rework.ensure(pair)
            self.satisfaction.ensure(pair)

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
    """`handoff_target_seconds` and `handoff_slo_objective_ratio` from the process map; the
    text is rendered once per published map."""

    def __init__(self, catalog: Callable[[], Catalog]) -> None:
        self._catalog = catalog
        self.target = GaugeLines(
            "handoff_target_seconds",
            "Business-time target of a clock from the process map (the strictest among the "
            "pair's routes).",
            CLOCK,
        )
        self.objective = GaugeLines(
            "handoff_slo_objective_ratio",
            "Share of handoffs that must meet the target (the strictest objective among the "
            "pair's routes that set the milestone).",
            (*PAIR, "milestone"),
        )
        self._cached_for: Catalog | None = None
        self._cached: tuple[bytes, bytes] = (b"", b"")

    def render(self, openmetrics: bool) -> list[bytes]:
        """Both gauges for the current catalog."""
        catalog = self._catalog()
        if self._cached_for is not catalog:
            targets = [(c, catalog.targets[c]) for c in catalog.combos]
            objectives = sorted(catalog.objectives.items())
            self._cached = (
                self.target.render(targets, False) + self.objective.render(objectives, False),
                self.target.render(targets, True) + self.objective.render(objectives, True),
            )
            self._cached_for = catalog
        return [self._cached[openmetrics]]
