"""intake's use cases: admit what an upstream system posted, write it, answer; show and replay
what was refused downstream."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import orjson

from intake.domain.events import Limits, Pair, admit
from intake.domain.idempotency import IdempotencyCache, Reply
from intake.domain.posted import PostedEvent
from intake.domain.rejections import Rejection, RejectionIndex
from shared.auth import Caller, Forbidden
from shared.clock import Clock
from shared.events import EncodedEvent
from shared.http import ProblemError
from shared.routes import Router


class MapNotLoaded(ProblemError):
    """503: intake has not read a published process map yet (routing has not put one in force)."""

    status = 503
    title = "Process map not loaded yet"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class Sink(Protocol):
    """Where accepted events are written."""

    async def write(self, records: Sequence[EncodedEvent]) -> None:
        """Write and wait for every acknowledgement (raises KafkaUnavailable)."""
        ...

    async def replay(self, rejection: Rejection, by: str, at: datetime) -> None:
        """Post a dead letter's event again and record the replay."""
        ...


class Maps(Protocol):
    """The process map in force at the door."""

    @property
    def router(self) -> Router | None:
        """The router of the map in force, None before one was read."""
        ...


class Directory(Protocol):
    """What is known of handoffs opened before a request."""

    def pair_of(self, handoff_id: str) -> Pair | None:
        """(supplier, receiver) of a handoff, None if unknown."""
        ...

    def opened(self, handoffs: dict[str, Pair]) -> None:
        """Remember handoffs just opened."""
        ...


class Accepting(Protocol):
    """What is counted of accepted requests."""

    def accept(self, event_types: Sequence[str], source: str) -> None:
        """Count the accepted events of one request."""
        ...


class Intake:
    """Posts lifecycle events: all-or-nothing admission, then a write acknowledged by Kafka."""

    def __init__(
        self,
        *,
        sink: Sink,
        maps: Maps,
        directory: Directory,
        cache: IdempotencyCache,
        clock: Clock,
        limits: Limits,
        counted: Accepting,
        rejections: RejectionIndex,
    ) -> None:
        self._sink = sink
        self._maps = maps
        self._directory = directory
        self._cache = cache
        self._clock = clock
        self._limits = limits
        self._counted = counted
        self.rejections = rejections

    async def post(
        self,
        caller: Caller,
        items: Sequence[PostedEvent],
        paths: Sequence[str],
        idempotency_key: str | None,
        fingerprint: str,
        flat: bool = False,
    ) -> Reply:
        """Accept the events; a retry with the same Idempotency-Key gets the first reply.

        `fingerprint` identifies the request (method, path, body) to tell a retry from a reuse
        of the key with another request.
        """
        if idempotency_key is not None:
            earlier = self._cache.lookup(caller.name, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
            self._cache.begin(caller.name, idempotency_key, fingerprint)
        reply: Reply | None = None
        try:
            router = self._maps.router
            if router is None:
                raise MapNotLoaded(
                    "intake has not read a published process map yet; retry shortly",
                    headers={"Retry-After": "2"},
                )
            admitted = admit(
                items,
                caller=caller,
                router=router,
                pair_of=self._directory.pair_of,
                idempotency_key=idempotency_key,
                now=self._clock.now(),
                limits=self._limits,
                paths=paths,
                flat=flat,
            )
            await self._sink.write(admitted.records)
            self._directory.opened(admitted.opened)
            self._counted.accept([r.event_type for r in admitted.records], caller.name)
            body = {
                "accepted": len(admitted.records),
                "events": [
                    {"event_id": r.event_id, "handoff_id": r.key.decode(), "type": r.event_type}
                    for r in admitted.records
                ],
            }
            reply = Reply(202, orjson.dumps(body))
            return reply
        finally:
            if idempotency_key is not None:
                self._cache.finish(caller.name, idempotency_key, reply)

    async def replay(self, caller: Caller, rejection: Rejection, force: bool = False) -> Rejection:
        """Post a dead-lettered lifecycle event again (once its cause is fixed)."""
        if not caller.admin and caller.name != rejection.source:
            raise Forbidden(
                f"key {caller.name!r} may replay only what it posted itself "
                f"(this was posted by {rejection.source or 'an unknown system'})"
            )
        if not rejection.replayable:
            raise Conflict(
                f"rejection {rejection.id} is not a lifecycle event "
                f"({rejection.event_type or 'unreadable'}): there is nothing to post again"
            )
        if rejection.replayed_at is not None and not force:
            raise Conflict(
                f"rejection {rejection.id} was replayed at {rejection.replayed_at.isoformat()} "
                f"by {rejection.replayed_by}; add ?force=true to replay it again"
            )
        now = self._clock.now()
        await self._sink.replay(rejection, caller.name, now)
        rejection.replayed_at, rejection.replayed_by = now, caller.name
        return rejection
