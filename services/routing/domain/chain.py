"""Handoffs that chain along the map: when the receiving team completes a handoff, the next one
of the case opens, to the next process. Pure.

A route's `next` lists steps. When a handoff that took the route is completed, the first step
whose `when` equals the completed handoff's attributes opens the next handoff: from the
route's receiver, of the step's kind, to the step's process, with the same case, priority and
attributes. It is routed like any other handoff (its own route, standard and calendar), so the
next team's clock starts at the completion, on its own terms. No step matches, or the route has
none: the case's path ends there.

Never forever: the map checker refuses a chain that loops back to a route it came from, and a
chain stops at a depth bound (ROUTING_MAX_CHAIN_DEPTH) whatever map a handoff was routed under.
Idempotent: the next handoff's id (`<first handoff id>+<depth>`) and its event id derive from
the chain alone, so a redelivered or repeated completion opens the same handoff with the same
event, which every consumer de-duplicates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from shared.contracts import (
    ANY_PROCESS,
    EARLIEST_EVENT,
    NextStepV1,
    Priority,
    ProcessMapV1,
    ProcessV1,
    RouteSpecV1,
)
from shared.events import ChainV1, HandoffOpeningV1, HandoffSubmittedV1, derived_id
from shared.routes import AttributeValue, Router, canonical_value, when_matches

MAX_ID_LENGTH = 200
"""An Identifier's bound (shared.contracts): a longer chained id is replaced by a derived one."""


@dataclass(frozen=True, slots=True)
class HandoffFacts:
    """What routing remembers of an open handoff (a row of its changelog)."""

    case_id: str
    kind: str
    from_process: str
    to_process: str
    priority: Priority
    route_id: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    root: str = ""
    """The first handoff of its chain (its own id when an upstream system posted it)."""
    depth: int = 0
    """0 for a handoff an upstream system posted, +1 per step routing opened."""


def facts_of(
    handoff_id: str,
    opening: HandoffOpeningV1,
    to_process: str,
    route_id: str,
    chain: ChainV1 | None,
) -> HandoffFacts:
    """The facts of a handoff routing just routed."""
    return HandoffFacts(
        case_id=opening.case_id,
        kind=opening.kind,
        from_process=opening.from_process,
        to_process=to_process,
        priority=opening.priority,
        route_id=route_id,
        attributes=dict(opening.attributes),
        root=chain.root if chain is not None else handoff_id,
        depth=chain.depth if chain is not None else 0,
    )


class ChainEnd(StrEnum):
    """Why a completion opened nothing: the closed set, also a metric label."""

    END = "end"
    """The route has no step, or none matches the handoff's attributes: the path ends."""
    DEPTH = "depth-limit"
    """The chain is as deep as ROUTING_MAX_CHAIN_DEPTH allows."""
    ROUTE_GONE = "route-gone"
    """The handoff's route is no longer in the map in force."""
    UNKNOWN = "unknown-handoff"
    """Routing has no facts of the handoff (routed before chains existed, or closed already)."""


@dataclass(frozen=True, slots=True)
class NextHandoff:
    """The handoff a completion opens: its id, its `handoff.submitted` and its chain link."""

    handoff_id: str
    event_id: str
    payload: HandoffSubmittedV1
    chain: ChainV1


def chained_id(root: str, depth: int) -> str:
    """The id of the chain's handoff at `depth`: `<root>+<depth>`, or a derived id when that
    would be longer than an id may be."""
    readable = f"{root}+{depth}"
    return readable if len(readable) <= MAX_ID_LENGTH else derived_id("chain", root, str(depth))


def next_step(route: RouteSpecV1, attributes: Mapping[str, AttributeValue]) -> int | None:
    """The index of the first step of `route.next` whose `when` matches, None when none does."""
    for index, step in enumerate(route.next):
        if when_matches(step.when, attributes):
            return index
    return None


def next_handoff(
    handoff_id: str, facts: HandoffFacts, route: RouteSpecV1 | None, max_depth: int
) -> NextHandoff | ChainEnd:
    """What the completion of `handoff_id` opens, or why nothing."""
    if route is None:
        return ChainEnd.ROUTE_GONE
    index = next_step(route, facts.attributes)
    if index is None:
        return ChainEnd.END
    depth = facts.depth + 1
    if depth > max_depth:
        return ChainEnd.DEPTH
    step = route.next[index]
    root = facts.root or handoff_id
    next_id = chained_id(root, depth)
    payload = HandoffSubmittedV1(
        case_id=facts.case_id,
        kind=step.kind,
        from_process=route.to_process,
        to_process=step.to_process,
        priority=facts.priority,
        attributes=dict(facts.attributes),
    )
    return NextHandoff(
        handoff_id=next_id,
        # From the chain alone: a second completion of the same handoff (another event id)
        # opens the very same event, de-duplicated downstream instead of a second cycle.
        event_id=derived_id("chain", root, str(depth)),
        payload=payload,
        chain=ChainV1(root=root, depth=depth, previous=handoff_id, route_id=route.id),
    )


# --------------------------------------------------------------------------- the map checker


def _compatible(*conditions: Mapping[str, AttributeValue]) -> bool:
    """Whether one set of attributes can satisfy every condition (no key wants two values)."""
    wanted: dict[str, str] = {}
    for when in conditions:
        for key, value in when.items():
            text = canonical_value(value)
            if wanted.setdefault(key, text) != text:
                return False
    return True


def _router(
    processes: Sequence[ProcessV1],
    groups: Mapping[str, Sequence[str]],
    routes: Sequence[RouteSpecV1],
) -> Router:
    # Only what route resolution reads: built without re-validating checked parts.
    pmap = ProcessMapV1.model_construct(
        version=1,
        published_at=EARLIEST_EVENT,
        calendars=(),
        processes=tuple(processes),
        groups={g: tuple(m) for g, m in groups.items()},
        routes=tuple(routes),
    )
    return Router(pmap)


def chain_errors(
    routes: Sequence[tuple[str, RouteSpecV1]],
    processes: Sequence[ProcessV1],
    groups: Mapping[str, Sequence[str]],
    declared: Collection[tuple[str, str, str]] = (),
) -> list[tuple[str, str]]:
    """Every problem of the routes' `next` steps, as (path, reason): a step to an unknown
    process, to the route's own receiver, never taken, no route carrying it, a chain looping.

    `declared` is (from, kind, to) of every route the map declares, valid or not: a step one
    of those would carry is not reported again (the route's own errors are).
    """
    if not any(route.next for _, route in routes):
        return []  # most maps: nothing to index
    known = {p.id for p in processes}
    router = _router(processes, groups, [r for _, r in routes])
    path_of = {route.id: path for path, route in routes}
    edges: dict[str, list[str]] = {}
    errors: list[tuple[str, str]] = []
    for path, route in routes:
        targets: list[str] = []
        unconditional: int | None = None
        for index, step in enumerate(route.next):
            where = f"{path}.next[{index}]"
            if unconditional is not None:
                errors.append(
                    (
                        where,
                        f"never taken: next[{unconditional}] has no `when`, so it always "
                        "matches first",
                    )
                )
            elif not step.when:
                unconditional = index
            if step.to_process not in known:
                reason = f"unknown process {step.to_process!r}"
                if step.to_process in groups:
                    reason = f"{step.to_process!r} is a group: a step goes to one process"
                errors.append((f"{where}.to", reason))
                continue
            if step.to_process == route.to_process:
                errors.append(
                    (
                        f"{where}.to",
                        f"the next handoff leaves {route.to_process!r}: it goes to another "
                        "process, not back to itself",
                    )
                )
                continue
            carriers = [
                r
                for r in router.candidates(route.to_process, step.kind)
                if r.to_process == step.to_process and _compatible(route.when, step.when, r.when)
            ]
            if not carriers and not _declared(declared, route.to_process, step, groups, known):
                errors.append(
                    (
                        where,
                        f"no route carries a {step.kind!r} handoff from {route.to_process!r} to "
                        f"{step.to_process!r}"
                        + (" with these attributes" if step.when or route.when else "")
                        + ": add one, or fix the step",
                    )
                )
            targets.extend(r.id for r in carriers)
        edges[route.id] = targets
    errors.extend((path_of[start], reason) for start, reason in _loops(edges))
    return errors


def _declared(
    declared: Collection[tuple[str, str, str]],
    origin: str,
    step: NextStepV1,
    groups: Mapping[str, Sequence[str]],
    known: Collection[str],
) -> bool:
    """Whether a declared route (valid or not) could carry the step: one whose receiver is
    misspelt counts, its own error says so."""
    return any(
        kind == step.kind
        and (to == step.to_process or to not in known)
        and (source in (origin, ANY_PROCESS) or origin in groups.get(source, ()))
        for source, kind, to in declared
    )


def _loops(edges: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """Each loop among route chains once, as (the route closing it, a reason naming it)."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(edges, white)
    found: list[tuple[str, str]] = []
    for start in edges:
        if color[start] != white:
            continue
        # Iterative depth-first search: maps have thousands of routes, Python's stack does not.
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = [start]
        color[start] = grey
        while stack:
            node, index = stack[-1]
            successors = edges.get(node, ())
            if index < len(successors):
                stack[-1] = (node, index + 1)
                nxt = successors[index]
                state = color.get(nxt, black)
                if state == grey:
                    cycle = [*trail[trail.index(nxt) :], nxt]
                    found.append(
                        (
                            node,
                            "the chain loops: " + " -> ".join(cycle) + " (a case would be handed "
                            "on forever; end the chain or break the loop)",
                        )
                    )
                elif state == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    trail.append(nxt)
            else:
                color[node] = black
                stack.pop()
                trail.pop()
    return found
