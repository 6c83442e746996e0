"""Idempotency-Key replies: a retry gets the first answer, a reused key with another body is
refused. Bounded by bytes and in memory; the guarantee that nothing is duplicated does not
rest on it (event ids derived from the key are de-duplicated downstream, and a key reused with
another body after a restart surfaces there as an event id reused for other content), it only
makes replies exact."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

_OVERHEAD = 200
"""Bytes a remembered reply costs beyond its body and key (tuple, dict slot, strings)."""


class KeyReused(Exception):
    """The Idempotency-Key was used before with a different request body."""


class KeyInFlight(Exception):
    """A request with this Idempotency-Key is still being processed."""


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer as sent: status and the encoded JSON body."""

    status: int
    body: bytes


class IdempotencyCache:
    """(caller, key) -> (request fingerprint, reply), forgetting the oldest beyond `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._done: OrderedDict[tuple[str, str], tuple[str, Reply]] = OrderedDict()
        self._in_flight: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self._done)

    @property
    def size_bytes(self) -> int:
        """What the remembered replies cost, approximately."""
        return self._bytes

    def lookup(self, caller: str, key: str, fingerprint: str) -> Reply | None:
        """The earlier reply for a retry; raises if the key was reused or is in flight."""
        slot = (caller, key)
        if slot in self._in_flight:
            raise KeyInFlight(key)
        done = self._done.get(slot)
        if done is None:
            return None
        if done[0] != fingerprint:
            raise KeyReused(key)
        return done[1]

    def begin(self, caller: str, key: str, fingerprint: str) -> None:
        """Mark a request with this key as being processed."""
        self._in_flight[(caller, key)] = fingerprint

    def finish(self, caller: str, key: str, reply: Reply | None) -> None:
        """Remember the reply (None: the request failed, a retry may try again)."""
        fingerprint = self._in_flight.pop((caller, key), None)
        if reply is None or fingerprint is None:
            return
        cost = _cost(caller, key, reply)
        if cost > self._max_bytes:
            return  # too large to keep: a retry is still safe (same derived ids downstream)
        slot = (caller, key)
        old = self._done.pop(slot, None)
        if old is not None:
            self._bytes -= _cost(caller, key, old[1])
        self._done[slot] = (fingerprint, reply)
        self._bytes += cost
        while self._bytes > self._max_bytes:
            (old_caller, old_key), (_, old_reply) = self._done.popitem(last=False)
            self._bytes -= _cost(old_caller, old_key, old_reply)


def _cost(caller: str, key: str, reply: Reply) -> int:
    return len(reply.body) + len(caller) + len(key) + _OVERHEAD
