"""The internal-customer register over a published map: who supplies whom, directly and
transitively ("if we stopped for two weeks, who would complain?"). Pure."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from shared.contracts import CalendarV1, ProcessMapV1, ProcessV1, RouteSpecV1


@dataclass(frozen=True)
class Relation:
    """Another process at the other end of one or more routes, with those routes."""

    process: str
    routes: tuple[RouteSpecV1, ...]


def _reachable(start: str, edges: Mapping[str, set[str]]) -> list[str]:
    """Every process reachable from `start` (breadth-first, nearest first), itself excluded."""
    seen = {start}
    order: list[str] = []
    queue = deque([start])
    while queue:
        for nxt in sorted(edges.get(queue.popleft(), ())):
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
                queue.append(nxt)
    return order


class Catalog:
    """Look-ups over one published map: processes, calendars, routes, relations."""

    def __init__(self, pmap: ProcessMapV1) -> None:
        self.map = pmap
        self.processes: dict[str, ProcessV1] = {p.id: p for p in pmap.processes}
        self.calendars: dict[str, CalendarV1] = {c.id: c for c in pmap.calendars}
        self.routes: dict[str, RouteSpecV1] = {r.id: r for r in pmap.routes}
        self._downstream: dict[str, set[str]] = defaultdict(set)
        self._upstream: dict[str, set[str]] = defaultdict(set)
        for route in pmap.routes:
            self._downstream[route.from_process].add(route.to_process)
            self._upstream[route.to_process].add(route.from_process)

    def find_routes(
        self,
        from_process: str | None = None,
        to_process: str | None = None,
        kind: str | None = None,
    ) -> list[RouteSpecV1]:
        """Routes matching every filter given, in file order."""
        return [
            r
            for r in self.map.routes
            if (from_process is None or r.from_process == from_process)
            and (to_process is None or r.to_process == to_process)
            and (kind is None or r.kind == kind)
        ]

    def _group(self, routes: list[RouteSpecV1], other_end: str) -> list[Relation]:
        by_process: dict[str, list[RouteSpecV1]] = defaultdict(list)
        for route in routes:
            by_process[getattr(route, other_end)].append(route)
        return [Relation(p, tuple(rs)) for p, rs in by_process.items()]

    def suppliers(self, process_id: str) -> list[Relation]:
        """The processes that hand work to `process_id`, with the routes they use."""
        return self._group(self.find_routes(to_process=process_id), "from_process")

    def customers(self, process_id: str) -> list[Relation]:
        """The internal customers of `process_id`: who receives its work, by which routes."""
        return self._group(self.find_routes(from_process=process_id), "to_process")

    def upstream(self, process_id: str) -> list[str]:
        """Every process whose work reaches `process_id`, directly or through others."""
        return _reachable(process_id, self._upstream)

    def downstream(self, process_id: str) -> list[str]:
        """Every process that would feel it if `process_id` stopped, directly or not."""
        return _reachable(process_id, self._downstream)
