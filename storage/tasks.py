"""Stopping background tasks without hanging on a cancellation that was swallowed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)


async def stop_task(
    task: asyncio.Task[Any] | None, grace: float = 5.0, *, insist: bool = False
) -> None:
    """Cancel ``task`` and wait until it ends, for at most ``grace`` seconds (then log it
    and go on: a shutdown never hangs).

    With ``insist`` the cancellation is repeated while waiting, for a task inside a library
    that can swallow one: redis-py's ``get_message`` turns a cancellation that races with
    its own read timeout into that timeout, after which the task runs on. Without it, a
    task's own cleanup (a ``finally`` waiting for its threads) is never interrupted."""
    if task is None or task is asyncio.current_task():
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    task.cancel()
    while not task.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("background task %s did not stop in time", task.get_name())
            return
        await asyncio.wait({task}, timeout=min(0.25, remaining) if insist else remaining)
        if insist and not task.done():
            task.cancel()
    if not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()  # retrieved: an error at shutdown is not worth a warning


async def stop_tasks(tasks: list[asyncio.Task[Any]], grace: float = 5.0) -> None:
    """``stop_task`` for several tasks at once, sharing one ``grace``."""
    await asyncio.gather(*(stop_task(t, grace) for t in tasks))
