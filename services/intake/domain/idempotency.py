"""Idempotency-Key replies: a retry gets the first answer, a reused key with another body is
refused. Bounded and in memory; the guarantee that nothing is duplicated does not rest on it
(event ids derived from the key are de-duplicated downstream), it only makes replies exact."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


class KeyReused(Exception):
    """The Idempotency-Key was used before with a different request body."""


class KeyInFlight(Exception):
    """A request with this Idempotency-Key is still being processed."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class IdempotencyCache:
    """Maps (caller, key) -> (body fingerprint, reply), forgetting the oldest beyond `size`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._done: OrderedDict[tuple[str, str], tuple[str, Reply]] = OrderedDict()
        self._in_flight: dict[tuple[str, str], str] = {}

    def lookup(self, caller: str, key: str, body_hash: str) -> Reply | None:
        """The earlier reply for a retry; raises if the key was reused or is in flight."""
        slot = (caller, key)
        if slot in self._in_flight:
            raise KeyInFlight(key)
        done = self._done.get(slot)
        if done is None:
            return None
        if done[0] != body_hash:
            raise KeyReused(key)
        return done[1]

    def begin(self, caller: str, key: str, body_hash: str) -> None:
        """Mark a request with this key as being processed."""
        self._in_flight[(caller, key)] = body_hash

    def finish(self, caller: str, key: str, reply: Reply | None) -> None:
        """Remember the reply (None: the request failed, a retry may try again)."""
        body_hash = self._in_flight.pop((caller, key), None)
        if reply is None or body_hash is None or self._size == 0:
            return
        self._done[(caller, key)] = (body_hash, reply)
        if len(self._done) > self._size:
            self._done.popitem(last=False)
