"""The process map file: read it, parse its YAML safely, hand the document to the domain.

YAML is read with the safe loader plus three guards the plain loader lacks: a key given twice in
one mapping is an error (YAML silently keeps the last one, which would hide a duplicated
process), a document whose aliases expand beyond a bound is refused (an "alias bomb" posted
to the validate endpoint would otherwise eat memory and CPU), and a document nested deeper than
Baton's own limit is refused before it is composed. The limits are Baton's, not a side effect
of the YAML library in use: libyaml, for one, stops at its own depth with its own error, and
the pure-Python parser recurses until the interpreter gives up.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from yaml.events import CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml's parser when PyYAML was built with it: ~20x faster than the pure one
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

from routing.domain.processmap import (
    InvalidProcessMap,
    MapError,
    ProcessMapDraft,
    parse_process_map,
)
from shared.heap import gc_paused

MAX_EXPANDED_NODES = 2_000_000
"""Far above any real map (a 10,000-route map with four priorities, no anchors, has ~400,000
nodes), far below what hurts."""
MAX_DEPTH = 64
"""A process map nests about eight levels deep (routes[].standard.targets.P1.response); 64
leaves room for anchors and `x-` sections and is far below any parser's own limit."""
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_SafeLoader):
    """SafeLoader that records duplicate keys instead of silently dropping values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[MapError] = []
        self._tags: dict[tuple[Any, ...], str] = {}

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        """The tag of a node; a plain scalar's is remembered per value (a map repeats "30m",
        "P1" and ids thousands of times, and implicit resolution runs regular expressions)."""
        if kind is not ScalarNode or not isinstance(implicit, tuple):
            tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            return tag
        key = (value, *implicit)
        tag = self._tags.get(key, "")
        if not tag:
            tag = self._tags[key] = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, noting every key its node gives twice."""
        # Only the mapping's own keys: keys brought in by a merge (<<: *anchor) may be overridden.
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node.value, str):
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first_line:
                self.duplicates.append(
                    MapError(
                        f"line {line}",
                        f"key {key_node.value!r} given twice in one mapping "
                        f"(first at line {first_line[key_node.value]}): only one can be kept",
                    )
                )
            else:
                first_line[key_node.value] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _measure(root: Node) -> tuple[int, int]:
    """(nodes once every alias is expanded, collection nesting depth) of a composed document.

    Iterative (no recursion, whatever the depth) and memoised per node, so a shared node is
    measured once however often aliases repeat it; a recursive alias counts once.
    """
    memo: dict[int, tuple[int, int]] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, SequenceNode):
            children: list[Node] = node.value
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            memo[id(node)] = (1, 0)
            continue
        if children_done:
            sizes = [memo[id(child)] for child in children]
            memo[id(node)] = (
                1 + sum(size for size, _ in sizes),
                1 + max((depth for _, depth in sizes), default=0),
            )
        elif id(node) not in memo:
            memo[id(node)] = (1, 1)  # in progress: what a recursive alias back to it counts
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in memo)
    return memo[id(root)]


def _too_deep(text: str, loader: type[Any] = _SafeLoader) -> MapError | None:
    """The first place the document nests deeper than MAX_DEPTH, found on the event stream
    (flat: no recursion, and nothing is composed). Raises the parser's YAMLError, if any."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
                return MapError(
                    "(yaml)", f"the document is nested more than {MAX_DEPTH} levels deep ({where})"
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
    return None


def _nesting_error(text: str) -> MapError | None:
    """Baton's depth limit, whatever the parser's own limits.

    libyaml's scanner reads ahead inside flow collections and may stop at its own depth limit
    before the event stream shows ours: when it fails, the text up to where it failed is read
    again with the pure-Python parser, which has no limit of its own (only invalid documents
    pay for that second pass).
    """
    try:
        return _too_deep(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        prefix = text[: mark.index] if mark is not None and mark.index else text
        try:
            deep = _too_deep(prefix, yaml.SafeLoader)
        except yaml.YAMLError:
            deep = None
        if deep is None:
            raise
        return deep


_C_COMPOSER: bool = getattr(_SafeLoader, "__module__", "") != yaml.SafeLoader.__module__
"""libyaml composes nodes in C, without Python recursion: the nesting depth can be measured on
the composed document in one pass. The pure-Python composer recurses per level, so without
libyaml the depth is checked on the event stream first."""


def load_yaml(text: str) -> tuple[Any, list[MapError]]:
    """The YAML document in `text` and the problems the loader found (syntax, duplicate keys)."""
    loader = _Loader(text)
    try:
        if not _C_COMPOSER:  # pragma: no cover - PyYAML without libyaml
            deep = _nesting_error(text)
            if deep is not None:
                return None, [deep]
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            # libyaml stops at its own depth with its own error: report Baton's limit if
            # that is what the document breaks.
            deep = _nesting_error(text)
            if deep is not None:
                return None, [deep]
            raise
        if node is None:
            return None, []
        size, depth = _measure(node)
        if depth > MAX_DEPTH:
            reason = f"the document is nested more than {MAX_DEPTH} levels deep"
            return None, [MapError("(yaml)", reason)]
        if size > MAX_EXPANDED_NODES:
            reason = f"the document expands to more than {MAX_EXPANDED_NODES} nodes (aliases?)"
            return None, [MapError("(yaml)", reason)]
        document = loader.construct_document(node)
        return document, loader.duplicates
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [MapError(where, f"invalid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, [MapError("(yaml)", f"invalid YAML: {exc}")]
    finally:
        loader.dispose()


def parse_map_text(
    text: str, source: str = "", *, checked_at: datetime | None = None
) -> ProcessMapDraft:
    """Parse and check a process map given as YAML text; raises InvalidProcessMap (with
    `checked_at`, targets must be computable from that instant: see parse_process_map)."""
    with gc_paused():
        return _parse(text, source, checked_at)


def _parse(text: str, source: str, checked_at: datetime | None) -> ProcessMapDraft:
    document, problems = load_yaml(text)
    if problems and document is None:
        raise InvalidProcessMap(problems, source)
    try:
        draft = parse_process_map(document, checked_at=checked_at)
    except InvalidProcessMap as exc:
        raise InvalidProcessMap([*problems, *exc.errors], source) from None
    if problems:
        raise InvalidProcessMap(problems, source)
    return draft


def read_map_file(
    path: Path, max_bytes: int | None = None, *, checked_at: datetime | None = None
) -> ProcessMapDraft:
    """Read and check the process map file; raises InvalidProcessMap listing every error
    (a file over `max_bytes` is refused before it is parsed)."""
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InvalidProcessMap(
                [
                    MapError(
                        "(file)",
                        f"{size} bytes, over the limit of {max_bytes} (ROUTING_MAX_MAP_BYTES)",
                    )
                ],
                str(path),
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidProcessMap([MapError("(file)", "file not found")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProcessMap([MapError("(file)", f"cannot read: {exc}")], str(path)) from None
    return parse_map_text(text, str(path), checked_at=checked_at)
