"""Route resolution: which process receives a handoff, and under which service standard. Pure.

Part of the process map's contract, so it lives beside it: routing applies it to every
opening event, and intake applies the same rule at the door to refuse, with a 4xx naming the
field, what routing could never route (an unknown process or kind, a kind with no route).

A handoff matches a route when `from` and `kind` are equal, `to` too if the upstream system
named one, and every `when` attribute equals the handoff's attribute of that name (compared as
text: see `canonical_value`). Among the matches the most specific route (most `when` keys)
wins; equally specific routes are taken in file order, so the first is the default receiver.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from enum import StrEnum

from shared.contracts import ProcessMapV1, RouteSpecV1, RouteV1
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


def _names(values: Iterable[str]) -> str:
    items = sorted(set(values))
    return ", ".join(items) if items else "none"


def _did_you_mean(wrong: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(wrong, sorted(known), n=1, cutoff=0.8)
    return f"; did you mean {close[0]!r}?" if close else ""


class Router:
    """Resolves handoffs against one published process map (indexes it once)."""

    def __init__(self, pmap: ProcessMapV1) -> None:
        self.map = pmap
        self._processes = {p.id for p in pmap.processes}
        self._by_origin: dict[tuple[str, str], list[RouteSpecV1]] = defaultdict(list)
        self._kinds_from: dict[str, set[str]] = defaultdict(set)
        for route in pmap.routes:  # file order is kept: it breaks ties
            self._by_origin[(route.from_process, route.kind)].append(route)
            self._kinds_from[route.from_process].add(route.kind)

    def resolve(self, handoff: HandoffOpeningV1) -> RouteV1:
        """The route and standard of an opening event; raises a RoutingError saying why not."""
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
        candidates = self._by_origin.get((origin, kind), [])
        if not candidates:
            raise UnknownKind(
                f"no route of kind {kind!r} from {origin!r} "
                f"(kinds from {origin!r}: {_names(self._kinds_from.get(origin, ()))})"
                + _did_you_mean(kind, self._kinds_from.get(origin, ())),
                "kind",
            )
        if target is not None:
            candidates = [r for r in candidates if r.to_process == target]
            if not candidates:
                receivers = {r.to_process for r in self._by_origin[(origin, kind)]}
                raise NoRoute(
                    f"no route of kind {kind!r} from {origin!r} to {target!r} "
                    f"(this kind goes to: {_names(receivers)})",
                    "to",
                )
        matching = [r for r in candidates if when_matches(r.when, handoff.attributes)]
        if not matching:
            conditions = "; ".join(
                f"{r.id}: " + ", ".join(f"{k}={canonical_value(v)}" for k, v in r.when.items())
                for r in candidates
            )
            raise NoRoute(
                f"no route of kind {kind!r} from {origin!r}"
                + (f" to {target!r}" if target else "")
                + f" matches the handoff's attributes (conditions: {conditions})",
                "attributes",
            )
        # max() keeps the first of equals, and `matching` is in file order.
        route = max(matching, key=lambda r: len(r.when))
        # A priority the standard sets no targets for is still routed: the handoff is real and
        # must be visible (status, case views); it simply runs no clock until a
        # reprioritization gives it one. Dead-lettering it would hide it.
        return RouteV1(
            from_process=origin,
            to_process=route.to_process,
            kind=kind,
            standard=route.standard,
        )
