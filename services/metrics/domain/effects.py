"""What an event does to the metrics: a list of effects (counter increments, observations).

Pure: an envelope and the catalog in, effects out. The handler stages the effects and applies
them once the event's offset is committed, so nothing here knows about Kafka or Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from metrics.domain.catalog import MILESTONES, Catalog, Pair
from shared.events import (
    Envelope,
    HandoffOpeningV1,
    HandoffRatedV1,
    SlaDecisionV1,
    SlaOpenedV1,
    SlaRetractedV1,
    SlaStoppedV1,
)

EXEMPLAR_MAX_CHARS = 128
"""OpenMetrics caps an exemplar's label names plus values at 128 UTF-8 characters."""
_EXEMPLAR_ID_MAX = EXEMPLAR_MAX_CHARS - len("handoff_id")


class Family(StrEnum):
    """The metric families events move (the scrape-time gauges come from the tables)."""

    OPENED = "opened"
    OUTCOMES = "outcomes"
    RETRACTIONS = "retractions"
    DURATION = "duration"
    USAGE = "usage"
    REWORK = "rework"
    SATISFACTION = "satisfaction"


@dataclass(frozen=True, slots=True)
class Exemplar:
    """The handoff behind an observation, and when it happened (event time, Unix seconds)."""

    handoff_id: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class Effect:
    """One counter increment (value = amount) or one histogram observation (value = sample);
    `labels` follow the family's label names."""

    family: Family
    labels: tuple[str, ...]
    value: float = 1.0
    exemplar: Exemplar | None = None


class Unlabelable(ValueError):
    """The event cannot be labelled from the catalog: counted as invalid, never a label."""

    code = "unlabelable"


class UnknownProcess(Unlabelable):
    """The event names a process the current process map does not have."""

    code = "unknown-process"


class UnknownPair(Unlabelable):
    """A lifecycle event for a handoff whose supplier and customer are not known here."""

    code = "unknown-pair"


PairLookup = Callable[[str], Pair | None]


def exemplar_for(handoff_id: str, timestamp: float) -> Exemplar | None:
    """An exemplar naming the handoff, or None when the id is too long for OpenMetrics."""
    if len(handoff_id) > _EXEMPLAR_ID_MAX:
        return None  # a truncated id would point at the wrong handoff
    return Exemplar(handoff_id, timestamp)


def announced_pair(envelope: Envelope) -> Pair | None:
    """The (from, to) an event states about its handoff, if it states one."""
    if envelope.route is not None:
        return envelope.route.from_process, envelope.route.to_process
    payload = envelope.payload
    if isinstance(payload, SlaOpenedV1 | SlaDecisionV1):
        return payload.from_process, payload.to_process
    if isinstance(payload, HandoffOpeningV1) and payload.to_process is not None:
        return payload.from_process, payload.to_process
    return None


def _pair(catalog: Catalog, from_team: str, to_team: str) -> Pair:
    if not catalog.knows(from_team, to_team):
        unknown = sorted({from_team, to_team} - catalog.processes)
        raise UnknownProcess(f"process {', '.join(unknown)} is not in the process map")
    return from_team, to_team


def decision_effects(envelope: Envelope, catalog: Catalog) -> list[Effect]:
    """The effects of one SLA decision (`sla.*`)."""
    payload = envelope.payload
    if isinstance(payload, SlaOpenedV1):
        f, t = _pair(catalog, payload.from_process, payload.to_process)
        priority = payload.priority.value
        return [
            Effect(Family.OPENED, (f, t, priority)),
            *_outcomes_at_zero(catalog, f, t, priority),
        ]
    if not isinstance(payload, SlaDecisionV1):
        return []
    f, t = _pair(catalog, payload.from_process, payload.to_process)
    clock = (f, t, payload.priority.value, payload.clock.value)
    match envelope.event_type:
        case "sla.met":
            return [Effect(Family.OUTCOMES, (*clock, "met"))]
        case "sla.missed":
            return [Effect(Family.OUTCOMES, (*clock, "missed"))]
        case "sla.retracted":
            assert isinstance(payload, SlaRetractedV1)
            return [Effect(Family.RETRACTIONS, (*clock, payload.retracted.value))]
        case "sla.stopped":
            assert isinstance(payload, SlaStoppedV1)
            return _stopped(envelope.key, (f, t, payload.clock.value), payload)
    return []  # sla.warning: nothing to count (yet)


def _outcomes_at_zero(catalog: Catalog, f: str, t: str, priority: str) -> list[Effect]:
    """The outcome series of the clocks a just-opened handoff will be decided on, created at
    0: a counter must be scraped at 0 before its first increment, or `increase()` (every burn
    rate and breach alert) never sees that first miss. Created when the pair and priority are
    first used, not for the whole catalog (the series budget, domain/tally.py)."""
    targets = catalog.targets
    return [
        Effect(Family.OUTCOMES, (f, t, priority, milestone, "missed"), 0.0)
        for milestone in MILESTONES
        if (f, t, priority, milestone) in targets
    ]


def _stopped(handoff_id: str, clock: tuple[str, ...], stopped: SlaStoppedV1) -> list[Effect]:
    """Duration and usage of a stopped clock, labelled (from, to, milestone): no priority,
    which would multiply the histograms' series by four (see domain/tally.py, the budget)."""
    exemplar = exemplar_for(handoff_id, stopped.reached_at.timestamp())
    out: list[Effect] = []
    wall = stopped.elapsed_wall_seconds
    if math.isfinite(wall) and wall >= 0:
        out.append(Effect(Family.DURATION, clock, wall, exemplar))
    if stopped.target_seconds > 0 and math.isfinite(stopped.elapsed_business_seconds):
        usage = max(stopped.elapsed_business_seconds, 0.0) / stopped.target_seconds
        out.append(Effect(Family.USAGE, clock, usage, exemplar))
    return out


def lifecycle_effects(envelope: Envelope, catalog: Catalog, pair_of: PairLookup) -> list[Effect]:
    """The effects of one routed lifecycle event (`handoff.*`): rework and ratings."""
    if envelope.event_type not in ("handoff.rejected", "handoff.rated"):
        return []
    pair = announced_pair(envelope) or pair_of(envelope.key)
    if pair is None:
        raise UnknownPair(f"no supplier/customer known for handoff {envelope.key!r}")
    f, t = _pair(catalog, *pair)
    payload = envelope.payload
    if isinstance(payload, HandoffRatedV1):
        exemplar = exemplar_for(envelope.key, envelope.occurred_at.timestamp())
        return [Effect(Family.SATISFACTION, (f, t), float(payload.rating), exemplar)]
    return [Effect(Family.REWORK, (f, t))]


def effects_of(envelope: Envelope, catalog: Catalog, pair_of: PairLookup) -> list[Effect]:
    """The effects of any consumed event; raises Unlabelable when the catalog cannot label it."""
    if envelope.event_type.startswith("sla."):
        return decision_effects(envelope, catalog)
    return lifecycle_effects(envelope, catalog, pair_of)
