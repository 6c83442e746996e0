"""Which metrics instance exposes which supplier->customer pair.

Scale-out must not multiply series: with `shards` instances, instance `index` keeps the state
(status rows, counters, catalog gauges) of the pairs `shard_of(pair, shards) == index` only,
so the instances together expose each series once. The hash is stable across processes,
machines and Python versions (CRC-32 of the two ids), so every instance agrees on the owner.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from metrics.domain.catalog import Pair


def shard_of(pair: Pair, shards: int) -> int:
    """The shard (0 .. shards-1) that owns a pair."""
    if shards <= 1:
        return 0
    return zlib.crc32(f"{pair[0]}\x1f{pair[1]}".encode()) % shards


@dataclass(frozen=True, slots=True)
class Shard:
    """This instance's share of the pairs: `index` of `count`."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need 0 <= index < count")

    def owns(self, pair: Pair) -> bool:
        """True when this instance exposes the pair's series."""
        return self.count == 1 or shard_of(pair, self.count) == self.index

    @property
    def name(self) -> str:
        """`<index>-of-<count>`: names the shard's consumer group and changelog keys."""
        return f"{self.index}-of-{self.count}"
