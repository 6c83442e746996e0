"""The catalog every label comes from: process ids, supplier->customer pairs, their targets.

Labels are catalog ids and closed enums only (OBSERVABILITY.md): a process id that is not in
the current process map never becomes a label value. Built from the published `ProcessMapV1`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.contracts import ClockName, Priority, ProcessMapV1

PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)
MILESTONES: tuple[str, ...] = tuple(c.value for c in ClockName)
OUTCOMES: tuple[str, ...] = ("met", "missed")

Pair = tuple[str, str]
"""(from_team, to_team): the supplier and its internal customer."""
PairPriority = tuple[str, str, str]
"""(from_team, to_team, priority)."""
Combo = tuple[str, str, str, str]
"""(from_team, to_team, priority, milestone): one clock of one pair at one priority."""


@dataclass(frozen=True)
class Catalog:
    """What the process map says, in the shape metrics need."""

    version: int
    processes: frozenset[str]
    pairs: tuple[Pair, ...]
    combos: tuple[Combo, ...] = ()
    """Every (pair, priority, milestone) some route of the pair sets a target for."""
    targets: Mapping[Combo, float] = field(default_factory=dict)
    """Target seconds per combo: the strictest (smallest) among the pair's routes."""
    objectives: Mapping[tuple[str, str, str], float] = field(default_factory=dict)
    """(from, to, milestone) -> the strictest (highest) objective among the pair's routes."""

    @classmethod
    def empty(cls) -> Catalog:
        """No process map yet: nothing can be labelled."""
        return cls(version=0, processes=frozenset(), pairs=())

    @classmethod
    def from_map(cls, process_map: ProcessMapV1) -> Catalog:
        """The catalog of a published process map."""
        processes = frozenset(p.id for p in process_map.processes)
        targets: dict[Combo, float] = {}
        objectives: dict[tuple[str, str, str], float] = {}
        pairs: set[Pair] = set()
        for route in process_map.routes:
            f, t = route.from_process, route.to_process
            if f not in processes or t not in processes:
                continue  # routing validates this; never label an id the catalog lacks
            pairs.add((f, t))
            standard = route.standard
            for milestone in ClockName:
                for priority in Priority:
                    target = standard.target(priority, milestone)
                    if target is None:
                        continue
                    combo = (f, t, priority.value, milestone.value)
                    seconds = target.total_seconds()
                    targets[combo] = min(seconds, targets.get(combo, seconds))
                    slo = (f, t, milestone.value)
                    objectives[slo] = max(standard.objective, objectives.get(slo, 0.0))
        ordered = tuple(sorted(pairs))
        combos = tuple(
            (f, t, p, m)
            for f, t in ordered
            for p in PRIORITIES
            for m in MILESTONES
            if (f, t, p, m) in targets
        )
        return cls(
            version=process_map.version,
            processes=processes,
            pairs=ordered,
            combos=combos,
            targets=targets,
            objectives=objectives,
        )

    def knows(self, from_team: str, to_team: str) -> bool:
        """True when both processes are in the catalog (so both may be label values)."""
        return from_team in self.processes and to_team in self.processes

    def pair_priorities(self) -> tuple[PairPriority, ...]:
        """Every pair at every priority: the label sets of per-pair-and-priority series."""
        return tuple((f, t, p) for f, t in self.pairs for p in PRIORITIES)
