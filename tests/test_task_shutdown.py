"""Shutting down never hangs on a background task that swallowed its cancellation, as a
reader inside redis-py's ``get_message`` can when its own read timeout races with it."""

from __future__ import annotations

import asyncio
import contextlib

from storage.tasks import stop_task, stop_tasks


async def swallows_first_cancellation(stopped: list[str]) -> None:
    with contextlib.suppress(asyncio.CancelledError):  # as a racing library timeout does
        await asyncio.sleep(3600)
    try:
        await asyncio.Event().wait()  # runs on, until cancelled again
    finally:
        stopped.append("yes")


async def test_a_task_that_swallows_a_cancellation_is_still_stopped():
    stopped: list[str] = []
    task = asyncio.create_task(swallows_first_cancellation(stopped))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(stop_task(task, insist=True), timeout=5)
    assert task.done() and stopped == ["yes"]


async def test_a_tasks_own_cleanup_is_not_interrupted():
    cleaned: list[str] = []

    async def with_slow_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.6)  # e.g. waiting for its threads before releasing a lock
            cleaned.append("done")

    task = asyncio.create_task(with_slow_cleanup())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(stop_task(task), timeout=5)
    assert cleaned == ["done"]


async def test_a_task_that_never_stops_is_given_up_on_after_the_grace():
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(stop_tasks([task], grace=0.5), timeout=5)  # returns, logged
    assert not task.done()
    released.set()
    await stop_task(task)
    assert task.done()


async def test_stopping_the_webhook_watch_leaves_no_look_behind():
    from typing import Any, cast

    from gql.server.watch import RecommendationWatch

    watch = RecommendationWatch(cast(Any, None), cast(Any, None))
    watch.schedule("default", ["u1"], "events")  # a look waits a second to gather a burst
    await asyncio.sleep(0.01)
    await asyncio.wait_for(watch.stop(), timeout=5)

    def looks() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if not t.done()
                and getattr(t.get_coro(), "__qualname__", "") == "RecommendationWatch._look"]

    assert looks() == []  # the cancelled look started no other in its finally
    watch.schedule("default", ["u2"], "events")  # and none starts once stopped
    assert looks() == []
