"""The internal-customer register over a published map: who supplies whom, directly and
transitively ("if we stopped for two weeks, who would complain?"). Pure."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared.contracts import ANY_PROCESS, CalendarV1, ProcessMapV1, ProcessV1, RouteSpecV1
from shared.routes import origins_of


@dataclass(frozen=True)
class Relation:
    """Another process at the other end of one or more routes, with those routes."""

    process: str
    routes: tuple[RouteSpecV1, ...]


def _reachable(start: str, edges: Callable[[str], Iterable[str]]) -> list[str]:
    """Every process reachable from `start` (breadth-first, nearest first), itself excluded."""
    seen = {start}
    order: list[str] = []
    queue = deque([start])
    while queue:
        for nxt in sorted(edges(queue.popleft())):
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
                queue.append(nxt)
    return order


class Catalog:
    """Look-ups over one published map: processes, calendars, routes, relations.

    A default route (from a group or `*`) relates its receiver to every process it applies
    to; `*` is kept as one edge to "everyone" instead of one per process.
    """

    def __init__(self, pmap: ProcessMapV1) -> None:
        self.map = pmap
        self.processes: dict[str, ProcessV1] = {p.id: p for p in pmap.processes}
        self.calendars: dict[str, CalendarV1] = {c.id: c for c in pmap.calendars}
        self.routes: dict[str, RouteSpecV1] = {r.id: r for r in pmap.routes}
        self._members = {g: frozenset(members) for g, members in pmap.groups.items()}
        self._downstream: dict[str, set[str]] = defaultdict(set)
        self._upstream: dict[str, set[str]] = defaultdict(set)
        self._from_any: set[str] = set()  # receivers of a route from `*`
        for route in pmap.routes:
            if route.from_process == ANY_PROCESS:
                self._from_any.add(route.to_process)
                continue
            for origin in origins_of(route, pmap):
                self._downstream[origin].add(route.to_process)
                self._upstream[route.to_process].add(origin)

    def applies(self, route: RouteSpecV1, from_process: str) -> bool:
        """True when `route` may carry handoffs from `from_process` (itself, its group, `*`)."""
        origin = route.from_process
        if origin == from_process:
            return True
        if route.to_process == from_process:
            return False
        return origin == ANY_PROCESS or from_process in self._members.get(origin, ())

    def find_routes(
        self,
        from_process: str | None = None,
        to_process: str | None = None,
        kind: str | None = None,
    ) -> list[RouteSpecV1]:
        """Routes matching every filter given, in file order; `from_process` also finds the
        group and `*` routes that apply to it."""
        return [
            r
            for r in self.map.routes
            if (from_process is None or self.applies(r, from_process))
            and (to_process is None or r.to_process == to_process)
            and (kind is None or r.kind == kind)
        ]

    def _group(self, routes: list[RouteSpecV1], other_end: str) -> list[Relation]:
        by_process: dict[str, list[RouteSpecV1]] = defaultdict(list)
        for route in routes:
            by_process[getattr(route, other_end)].append(route)
        return [Relation(p, tuple(rs)) for p, rs in by_process.items()]

    def suppliers(self, process_id: str) -> list[Relation]:
        """Who hands work to `process_id`, with the routes they use: a process, or the group
        or `*` a default route leaves from."""
        return self._group(self.find_routes(to_process=process_id), "from_process")

    def customers(self, process_id: str) -> list[Relation]:
        """The internal customers of `process_id`: who receives its work, by which routes."""
        return self._group(self.find_routes(from_process=process_id), "to_process")

    def _ups(self, process_id: str) -> Iterable[str]:
        if process_id in self._from_any:
            return (p for p in self.processes if p != process_id)
        return self._upstream.get(process_id, ())

    def _downs(self, process_id: str) -> Iterable[str]:
        return self._downstream.get(process_id, set()) | (self._from_any - {process_id})

    def upstream(self, process_id: str) -> list[str]:
        """Every process whose work reaches `process_id`, directly or through others."""
        return _reachable(process_id, self._ups)

    def downstream(self, process_id: str) -> list[str]:
        """Every process that would feel it if `process_id` stopped, directly or not."""
        return _reachable(process_id, self._downs)
