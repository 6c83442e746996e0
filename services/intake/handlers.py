"""intake's use cases: validate what an upstream system posted, write it, answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from intake.adapters.kafka import EventSink
from intake.domain.events import Caller, EventIn, build_envelopes, fingerprint
from intake.domain.idempotency import IdempotencyCache, Reply
from shared.clock import Clock


class Intake:
    """Posts lifecycle events: all-or-nothing validation, then a write acknowledged by Kafka."""

    def __init__(
        self, sink: EventSink, clock: Clock, cache: IdempotencyCache, max_skew: timedelta
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._cache = cache
        self._max_skew = max_skew

    async def post(
        self,
        caller: Caller,
        items: Sequence[EventIn],
        paths: Sequence[str],
        idempotency_key: str | None,
        flat: bool = False,
    ) -> Reply:
        """Accept the events; a retry with the same Idempotency-Key gets the first reply."""
        if idempotency_key is not None:
            # What was asked, to tell a retry from a reuse of the key with another request.
            body_hash = fingerprint([item.model_dump(mode="json") for item in items])
            earlier = self._cache.lookup(caller.name, idempotency_key, body_hash)
            if earlier is not None:
                return earlier
            self._cache.begin(caller.name, idempotency_key, body_hash)
        reply: Reply | None = None
        try:
            envelopes = build_envelopes(
                items,
                caller=caller,
                idempotency_key=idempotency_key,
                now=self._clock.now(),
                max_skew=self._max_skew,
                paths=paths,
                flat=flat,
            )
            await self._sink.write(envelopes)
            reply = Reply(
                202,
                {
                    "accepted": len(envelopes),
                    "events": [
                        {"event_id": e.event_id, "handoff_id": e.key, "type": e.event_type}
                        for e in envelopes
                    ],
                },
            )
            return reply
        finally:
            if idempotency_key is not None:
                self._cache.finish(caller.name, idempotency_key, reply)
