"""Route resolution: which process receives a handoff, and under which service standard. Pure.

Part of the process map's contract, so it lives beside it: routing applies it to every
opening event, and intake applies the same rule at the door to refuse, with a 4xx naming the
field, what routing could never route (an unknown process or kind, a kind with no route).

A route's `from` is one process, a group of processes (`groups` in the map) or `*` (any
process); a group or `*` never includes the route's own receiver. A handoff matches a route
when its `from` is (a member of) the route's `from`, `kind` is equal, `to` too if the upstream
system named one, and every `when` attribute equals the handoff's attribute of that name
(compared as text: see `canonical_value`). Among the matches the most specific route wins:
first by `from` (one process beats a group, a group beats `*`), then by the number of `when`
keys; equally specific routes are taken in file order, so the first is the default receiver.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from enum import IntEnum, StrEnum

from shared.contracts import ANY_PROCESS, ProcessMapV1, RouteSpecV1, RouteV1
from shared.events import HandoffOpeningV1

AttributeValue = str | int | float | bool


def canonical_value(value: AttributeValue) -> str:
    """How `when` values and handoff attributes compare: as text, `true`/`false`, 1 == 1.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def canonical_when(when: Mapping[str, AttributeValue]) -> tuple[tuple[str, str], ...]:
    """A route condition in a comparable form (order-insensitive)."""
    return tuple(sorted((k, canonical_value(v)) for k, v in when.items()))


class RejectReason(StrEnum):
    """Why an opening event could not be routed: the closed set used as a metric label."""

    UNKNOWN_PROCESS = "unknown-process"
    UNKNOWN_KIND = "unknown-kind"
    NO_ROUTE = "no-route"


class RoutingError(Exception):
    """A handoff the process map cannot route; `reason` is its closed-set category and
    `field` the field of the opening event's data at fault (from, to, kind or attributes)."""

    reason: RejectReason

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownProcess(RoutingError):
    """`from` or `to` names a process the map does not have."""

    reason = RejectReason.UNKNOWN_PROCESS


class UnknownKind(RoutingError):
    """No route of this kind leaves the supplying process."""

    reason = RejectReason.UNKNOWN_KIND


class NoRoute(RoutingError):
    """Routes of this kind exist from the process, but none fits this handoff."""

    reason = RejectReason.NO_ROUTE


def when_matches(
    when: Mapping[str, AttributeValue], attributes: Mapping[str, AttributeValue]
) -> bool:
    """True when every condition of `when` equals the attribute of the same name."""
    for key, expected in when.items():
        actual = attributes.get(key)
        if actual is None or canonical_value(actual) != canonical_value(expected):
            return False
    return True


def _names(values: Iterable[str], most: int = 30) -> str:
    items = sorted(set(values))
    if not items:
        return "none"
    more = f", ... {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def _did_you_mean(wrong: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(wrong, sorted(known), n=1, cutoff=0.8)
    return f"; did you mean {close[0]!r}?" if close else ""


class Reach(IntEnum):
    """How specific a route's `from` is: a higher value wins."""

    ANY = 0
    GROUP = 1
    PROCESS = 2


def reach_of(route: RouteSpecV1, groups: Mapping[str, object]) -> Reach:
    """Whether a route leaves one process, a group or any process."""
    if route.from_process == ANY_PROCESS:
        return Reach.ANY
    return Reach.GROUP if route.from_process in groups else Reach.PROCESS


def origins_of(route: RouteSpecV1, pmap: ProcessMapV1) -> tuple[str, ...]:
    """Every process whose handoffs the route may carry (a group or `*` without the receiver)."""
    origin = route.from_process
    if origin == ANY_PROCESS:
        members: Iterable[str] = (p.id for p in pmap.processes)
    elif origin in pmap.groups:
        members = pmap.groups[origin]
    else:
        return (origin,)
    return tuple(p for p in members if p != route.to_process)


class Router:
    """Resolves handoffs against one published process map (indexes it once)."""

    def __init__(self, pmap: ProcessMapV1) -> None:
        self.map = pmap
        self._processes = {p.id for p in pmap.processes}
        self._groups_of: dict[str, list[str]] = defaultdict(list)
        for group, members in pmap.groups.items():
            for member in members:
                self._groups_of[member].append(group)
        # Routes by what they leave from: a process, a group or any process, then the kind.
        # File order is kept: it breaks ties.
        self._by_origin: dict[tuple[str, str], list[tuple[int, RouteSpecV1]]] = defaultdict(list)
        self._kinds_from: dict[str, set[str]] = defaultdict(set)
        for index, route in enumerate(pmap.routes):
            self._by_origin[(route.from_process, route.kind)].append((index, route))
            self._kinds_from[route.from_process].add(route.kind)
        self._ranked: dict[tuple[str, str], tuple[RouteSpecV1, ...]] = {}

    def kinds_from(self, origin: str) -> set[str]:
        """Every kind some route carries from `origin` (its own, its groups' and any's)."""
        kinds = set(self._kinds_from.get(origin, ()))
        for group in self._groups_of.get(origin, ()):
            kinds |= self._kinds_from.get(group, set())
        return kinds | self._kinds_from.get(ANY_PROCESS, set())

    def candidates(self, origin: str, kind: str) -> tuple[RouteSpecV1, ...]:
        """The routes of `kind` that apply to handoffs from `origin`, most specific first."""
        key = (origin, kind)
        ranked = self._ranked.get(key)
        if ranked is None:
            found: list[tuple[int, int, int, RouteSpecV1]] = []
            sources = [(Reach.PROCESS, origin)]
            sources += [(Reach.GROUP, g) for g in self._groups_of.get(origin, ())]
            sources.append((Reach.ANY, ANY_PROCESS))
            for reach, source in sources:
                for index, route in self._by_origin.get((source, kind), ()):
                    if route.to_process != origin:
                        found.append((-reach, -len(route.when), index, route))
            found.sort(key=lambda item: item[:3])
            # Bounded: the keys are the map's own processes and kinds (checked before).
            ranked = self._ranked[key] = tuple(item[3] for item in found)
        return ranked

    def resolve(self, handoff: HandoffOpeningV1) -> RouteV1:
        """The route and standard of an opening event; raises a RoutingError saying why not."""
        route = self.route_of(handoff)
        # A priority the standard sets no targets for is still routed: the handoff is real and
        # must be visible (status, case views); it simply runs no clock until a
        # reprioritization gives it one. Dead-lettering it would hide it.
        # Built without re-validation: every part comes from the validated map and event.
        return RouteV1.model_construct(
            from_process=handoff.from_process,
            to_process=route.to_process,
            kind=handoff.kind,
            standard=route.standard,
        )

    def route_of(self, handoff: HandoffOpeningV1) -> RouteSpecV1:
        """The route an opening event takes; raises a RoutingError saying why none."""
        origin, kind, target = handoff.from_process, handoff.kind, handoff.to_process
        if origin not in self._processes:
            raise UnknownProcess(
                f"unknown supplying process from={origin!r}"
                + _did_you_mean(origin, self._processes)
                + f" (known: {_names(self._processes)})",
                "from",
            )
        if target is not None and target not in self._processes:
            raise UnknownProcess(
                f"unknown receiving process to={target!r}"
                + _did_you_mean(target, self._processes)
                + f" (known: {_names(self._processes)})",
                "to",
            )
        candidates = self.candidates(origin, kind)
        if not candidates:
            kinds = self.kinds_from(origin)
            raise UnknownKind(
                f"no route of kind {kind!r} from {origin!r} "
                f"(kinds from {origin!r}: {_names(kinds)})" + _did_you_mean(kind, kinds),
                "kind",
            )
        if target is not None:
            everyone = candidates
            candidates = tuple(r for r in candidates if r.to_process == target)
            if not candidates:
                raise NoRoute(
                    f"no route of kind {kind!r} from {origin!r} to {target!r} "
                    f"(this kind goes to: {_names(r.to_process for r in everyone)})",
                    "to",
                )
        # Most specific first, file order among equals: the first match wins.
        route = next((r for r in candidates if when_matches(r.when, handoff.attributes)), None)
        if route is None:
            conditions = "; ".join(
                f"{r.id}: " + ", ".join(f"{k}={canonical_value(v)}" for k, v in r.when.items())
                for r in candidates[:20]
            )
            more = f"; ... {len(candidates) - 20} more" if len(candidates) > 20 else ""
            raise NoRoute(
                f"no route of kind {kind!r} from {origin!r}"
                + (f" to {target!r}" if target else "")
                + f" matches the handoff's attributes (conditions: {conditions}{more})",
                "attributes",
            )
        return route
