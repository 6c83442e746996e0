"""The catalog every label comes from: process ids, supplier->customer pairs, their targets.

Labels are catalog ids and closed enums only (OBSERVABILITY.md): a process id that is not in
the current process map never becomes a label value. Built from the published `ProcessMapV1`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from shared.contracts import ANY_PROCESS, ClockName, Priority, ProcessMapV1, RouteSpecV1

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
    """What the process map says, in the shape metrics need.

    A pair named by a route of its own (`from` one process) is *listed*: its targets and
    objectives are exposed from the start. A pair only a default route carries (`from` a group
    or `*`) is *implied*: with `*` every process may hand work to the route's receiver, and
    exposing every such pair (649 teams: 420,000 pairs) would blow the series budget, so an
    implied pair gets its targets and objective once it shows up (`with_pairs`), and keeps them
    while the map still routes it. Event-driven series exist once their pair is used
    (domain/tally.py).
    """

    version: int
    processes: frozenset[str]
    pairs: tuple[Pair, ...]
    """The listed pairs, then the implied ones seen so far."""
    combos: tuple[Combo, ...] = ()
    """Every (pair, priority, milestone) some route of the pair sets a target for."""
    targets: Mapping[Combo, float] = field(default_factory=dict)
    """Target seconds per combo: the strictest (smallest) among the pair's routes."""
    objectives: Mapping[tuple[str, str, str], float] = field(default_factory=dict)
    """(from, to, milestone) -> the strictest (highest) objective among the pair's routes."""
    defaults: Mapping[str, tuple[RouteSpecV1, ...]] = field(default_factory=dict)
    """Receiver -> the default routes (from a group or `*`) that go to it."""
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Catalog:
        """No process map yet: nothing can be labelled."""
        return cls(version=0, processes=frozenset(), pairs=())

    @classmethod
    def from_map(cls, process_map: ProcessMapV1) -> Catalog:
        """The catalog of a published process map (listed pairs only)."""
        processes = frozenset(p.id for p in process_map.processes)
        listed: dict[Pair, list[RouteSpecV1]] = {}
        defaults: dict[str, list[RouteSpecV1]] = {}
        for route in process_map.routes:
            f, t = route.from_process, route.to_process
            if t not in processes:
                continue  # routing validates this; never label an id the catalog lacks
            if f == ANY_PROCESS or f in process_map.groups:
                defaults.setdefault(t, []).append(route)
            elif f in processes:
                listed.setdefault((f, t), []).append(route)
        empty = cls(
            version=process_map.version,
            processes=processes,
            pairs=(),
            defaults={t: tuple(rs) for t, rs in defaults.items()},
            groups={g: frozenset(m) for g, m in process_map.groups.items()},
        )
        return empty._grown(sorted(listed), listed)

    def _applying(self, pair: Pair) -> list[RouteSpecV1]:
        f, t = pair
        return [
            r
            for r in self.defaults.get(t, ())
            if f != t
            and (r.from_process == ANY_PROCESS or f in self.groups.get(r.from_process, ()))
        ]

    def _grown(
        self, pairs: Iterable[Pair], listed: Mapping[Pair, list[RouteSpecV1]] | None = None
    ) -> Catalog:
        targets = dict(self.targets)
        objectives = dict(self.objectives)
        added: list[Pair] = []
        combos: list[Combo] = []
        for pair in pairs:
            routes = [*(listed or {}).get(pair, ()), *self._applying(pair)]
            if not routes:
                continue
            added.append(pair)
            f, t = pair
            for route in routes:
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
            combos += [
                (f, t, p, m) for p in PRIORITIES for m in MILESTONES if (f, t, p, m) in targets
            ]
        return replace(
            self,
            pairs=self.pairs + tuple(added),
            combos=self.combos + tuple(combos),
            targets=targets,
            objectives=objectives,
        )

    def implies(self, from_team: str, to_team: str) -> bool:
        """True when a default route carries (from, to) and the pair is not in `pairs` yet."""
        return (
            (from_team, to_team) not in self._pair_set
            and self.knows(from_team, to_team)
            and bool(self._applying((from_team, to_team)))
        )

    def with_pairs(self, pairs: Iterable[Pair]) -> Catalog:
        """This catalog with the implied pairs among `pairs` added (itself if none is new)."""
        new = [p for p in dict.fromkeys(pairs) if self.implies(*p)]
        return self._grown(new) if new else self

    @functools.cached_property
    def _pair_set(self) -> frozenset[Pair]:
        return frozenset(self.pairs)

    def knows(self, from_team: str, to_team: str) -> bool:
        """True when both processes are in the catalog (so both may be label values)."""
        return from_team in self.processes and to_team in self.processes

    def pair_priorities(self, pairs: Iterable[Pair] | None = None) -> tuple[PairPriority, ...]:
        """Every pair (or those given) at every priority: the label sets of per-pair-and-
        priority series."""
        chosen = self.pairs if pairs is None else pairs
        return tuple((f, t, p) for f, t in chosen for p in PRIORITIES)
