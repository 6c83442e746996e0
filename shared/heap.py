"""The cyclic garbage collector kept out of a long-running service's way.

A service: CPython's collector runs a full collection whenever the objects promoted since the
last one reach a quarter of the long-lived heap. Requests and records in flight (waiting for
a Kafka acknowledgement) survive young collections and are promoted, so with the default
thresholds a busy service walked its whole heap -- modules, pydantic validators, the map --
every few hundred requests (measured on intake: 35 full collections in 10 s of load, a
quarter of its CPU). `settled` (every service's lifespan, shared.service) moves what exists
once the service has started out of the collector's sight (`gc.freeze`: it lives as long as
the process) and collects the young generation every 50,000 allocations instead of 700, so
the short-lived objects of a request or a record die by reference counting before the
collector looks at them.

A bulk build:
Reading a 10,000-route process map allocates millions of objects that all stay alive; the
collector's generational passes re-scan them again and again, which makes reading a map
super-linear in its size (measured: 11 s instead of 3 s for the YAML of 10,000 routes). Such
bulk builds pause the collector; nothing they allocate is garbage yet, and reference counting
still frees what is dropped. Nested and concurrent pauses (worker threads) are counted, so the
collector comes back only when the last one ends, and only if it was on before.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

YOUNG_THRESHOLD = 50_000
"""Allocations (net of frees) between young collections in a service (CPython's default: 700)."""

_lock = threading.Lock()
_paused = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (counted, thread-safe)."""
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()


@asynccontextmanager
async def settled(started: AbstractAsyncContextManager[Any]) -> AsyncIterator[Any]:
    """Run a service's lifespan with the collector tuned for it: the young threshold raised
    from the start, and what the startup built frozen once it is done; both undone when it
    stops (a process running several apps in turn, like the test suite, gets its collector
    back)."""
    threshold = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *threshold[1:])
    try:
        async with started as state:
            gc.collect()  # no garbage is frozen with the rest
            gc.freeze()
            yield state
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@contextmanager
def built_to_last() -> Iterator[None]:
    """A bulk build of what lives long (a partition's state restored from its changelog): the
    collector paused while it runs (other tasks of the loop run meanwhile, reference counting
    still frees their garbage), and what it built frozen after -- else the first collections
    after it would walk every object it made three times over, a stall of their own. Frozen
    before the collector is back: the first allocation after would otherwise start a young
    collection over everything the build made."""
    with gc_paused():
        yield
        gc.freeze()
