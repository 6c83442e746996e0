"""Which supplier and customer a handoff is between, as learned from the events that say so.

Rework (`handoff.rejected`) and ratings (`handoff.rated`) carry no from/to; the opening events
(`handoff.submitted`/`expected`, routed with their route) and every SLA decision do. The status
table knows every handoff it still holds; this bounded memory covers the rest.
"""

from __future__ import annotations

from collections import OrderedDict

from metrics.domain.catalog import Pair


class PairMemory:
    """handoff id -> (from, to), forgetting the least recently told beyond `size`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pairs: OrderedDict[str, Pair] = OrderedDict()
        self._interned: dict[Pair, Pair] = {}

    def __len__(self) -> int:
        return len(self._pairs)

    def remember(self, handoff_id: str, pair: Pair) -> None:
        """Note the pair of a handoff (the latest statement wins)."""
        if self._size <= 0:
            return
        self._pairs[handoff_id] = self._interned.setdefault(pair, pair)
        self._pairs.move_to_end(handoff_id)
        if len(self._pairs) > self._size:
            self._pairs.popitem(last=False)

    def get(self, handoff_id: str) -> Pair | None:
        """The pair last noted for a handoff, or None."""
        return self._pairs.get(handoff_id)
