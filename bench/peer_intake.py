"""The peer: the endpoint an integrator would write instead of Baton's intake.

    .venv/bin/python bench/peer_intake.py PORT

FastAPI + pydantic + aiokafka doing the same job the plain way: validate the posted events
with a pydantic model, write each as JSON with an idempotent producer (acks=all), answer 202
after every acknowledgement. No map, no scopes, no idempotency keys, no metrics: the floor
Baton's intake is measured against (bench/bench_intake.py), run the same way (uvicorn, uvloop,
httptools, one process, no access log) against the same broker.

Reads PEER_BOOTSTRAP and PEER_TOPIC from the environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from pydantic import BaseModel, Field

EventType = Literal[
    "expected",
    "submitted",
    "accepted",
    "completed",
    "rejected",
    "paused",
    "resumed",
    "reprioritized",
    "cancelled",
    "rated",
]


class Event(BaseModel):
    handoff_id: str = Field(min_length=1, max_length=200)
    type: EventType
    event_id: str = Field(min_length=1, max_length=200)
    occurred_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class OneEvent(BaseModel):
    type: EventType
    event_id: str = Field(min_length=1, max_length=200)
    occurred_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Batch(BaseModel):
    events: list[Event] = Field(min_length=1, max_length=1000)


def create_app() -> FastAPI:
    topic = os.environ["PEER_TOPIC"]
    state: dict[str, AIOKafkaProducer] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=os.environ["PEER_BOOTSTRAP"], acks="all", enable_idempotence=True
        )
        await producer.start()
        state["producer"] = producer
        yield
        await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/events", status_code=202)
    async def post_events(batch: Batch) -> dict[str, int]:
        producer = state["producer"]
        futures = [
            await producer.send(topic, e.model_dump_json().encode(), key=e.handoff_id.encode())
            for e in batch.events
        ]
        await asyncio.gather(*futures)
        return {"accepted": len(futures)}

    @app.post("/v1/handoffs/{handoff_id}/events", status_code=202)
    async def post_event(handoff_id: str, event: OneEvent) -> dict[str, int]:
        producer = state["producer"]
        future = await producer.send(
            topic, event.model_dump_json().encode(), key=handoff_id.encode()
        )
        await future
        return {"accepted": 1}

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
