"""The database gate (db.RequestGate): at most N requests in the database at once, and a
request that can't get a turn in time is told Busy (503) instead of waiting on."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from openvisit.config import Settings
from openvisit.db import RequestGate
from openvisit.errors import Busy


def test_a_request_without_a_turn_in_time_is_told_busy_and_the_next_one_gets_in() -> None:
    gate = RequestGate(slots=2, wait_seconds=0.3)
    outcomes: list[str] = []

    async def hold(seconds: float) -> None:
        async with gate.turn():
            outcomes.append("in")
            await anyio.sleep(seconds)

    async def late() -> None:
        await anyio.sleep(0.05)
        t0 = time.perf_counter()
        with pytest.raises(Busy) as caught:
            async with gate.turn():
                outcomes.append("should not get in")
        outcomes.append(f"busy after {time.perf_counter() - t0:.1f} s")
        assert caught.value.http_status == 503
        assert caught.value.details["retry_after_seconds"] > 0

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold, 1.0)
            tg.start_soon(hold, 1.0)
            tg.start_soon(late)
        async with gate.turn():  # the turns were given back
            outcomes.append("in again")

    # A thread of its own: a browser suite on the same worker may be running an event
    # loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, main).result()
    assert outcomes == ["in", "in", "busy after 0.3 s", "in again"]


def test_fewer_threads_than_pooled_connections_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="WORKER_THREADS"):
        Settings(env="test", db_pool_size=50, worker_threads=40)
