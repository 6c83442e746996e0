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
from yaml.nodes import MappingNode, Node, SequenceNode

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

MAX_EXPANDED_NODES = 2_000_000
"""Far above any real map (a 10,000-route map with four priorities has ~600,000 nodes), far
below what hurts."""
MAX_DEPTH = 64
"""A process map nests about eight levels deep (routes[].standard.targets.P1.response); 64
leaves room for anchors and `x-` sections and is far below any parser's own limit."""
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_SafeLoader):
    """SafeLoader that records duplicate keys instead of silently dropping values."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[MapError] = []

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


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """How many nodes the document has once every alias is expanded (shared nodes memoised)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return size


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


def load_yaml(text: str) -> tuple[Any, list[MapError]]:
    """The YAML document in `text` and the problems the loader found (syntax, duplicate keys)."""
    loader = _Loader(text)
    try:
        deep = _nesting_error(text)
        if deep is not None:
            return None, [deep]
        node = loader.get_single_node()
        if node is None:
            return None, []
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
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


def read_map_file(path: Path, *, checked_at: datetime | None = None) -> ProcessMapDraft:
    """Read and check the process map file; raises InvalidProcessMap listing every error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidProcessMap([MapError("(file)", "file not found")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProcessMap([MapError("(file)", f"cannot read: {exc}")], str(path)) from None
    return parse_map_text(text, str(path), checked_at=checked_at)
