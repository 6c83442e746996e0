"""The collector kept out of a service's way: frozen startup heap, rare young collections."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from builders import bare_service_app
from shared.heap import YOUNG_THRESHOLD


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as the test found it, restored after."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_a_started_service_has_its_startup_heap_frozen_and_its_state_kept(
    collector: None,
) -> None:
    seen: dict[str, object] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        seen["frozen_during_startup"] = gc.get_freeze_count()
        yield {"from": "the service"}
        seen["stopped"] = True

    app = bare_service_app(lifespan)
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app) as state:
        assert state == {"from": "the service"}  # a lifespan's state passes through
        assert seen["frozen_during_startup"] == 0  # frozen once started, not before
        assert gc.get_freeze_count() > 10_000  # modules, validators, the app itself
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert "stopped" not in seen
    assert seen["stopped"] is True
    assert gc.get_freeze_count() == 0  # undone once stopped
    assert gc.get_threshold()[0] != YOUNG_THRESHOLD
