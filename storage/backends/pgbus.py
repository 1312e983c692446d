"""Pub/sub through PostgreSQL's LISTEN/NOTIFY, for processes that share a database but no
Redis (several workers of ``recograph serve`` on the embedded default).

Caches and rate limits stay in-process (``MemoryBackend``); only messages cross processes.
Every process listens on one PostgreSQL channel with one dedicated connection and fans
messages out in-process to bounded queues, as the Redis backend does. A NOTIFY payload is
at most 8,000 bytes: larger messages are refused (publishers send lists in chunks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from storage.backends import MemoryBackend

log = logging.getLogger(__name__)
PG_CHANNEL = "recograph_bus"
MAX_PAYLOAD = 7_900


class PostgresBusBackend(MemoryBackend):
    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn
        self._listener: Any = None  # asyncpg connection
        self._publisher: Any = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Any:
        import asyncpg

        if self._publisher is None or self._publisher.is_closed():
            self._publisher = await asyncpg.connect(self.dsn)
        return self._publisher

    async def publish(self, channel: str, message: bytes) -> None:
        payload = json.dumps({"c": channel, "m": message.decode()}, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("message of %d bytes on %s not sent (NOTIFY limit)", len(payload), channel)
            return
        try:
            async with self._lock:
                conn = await self._connection()
                await conn.execute("SELECT pg_notify($1, $2)", PG_CHANNEL, payload)
            self.healthy = True
        except Exception as exc:
            if self.healthy:
                log.warning("pub/sub through PostgreSQL failed: %s", exc)
            self.healthy = False
            self._publisher = None

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        await self._listen()
        async for message in super().subscribe(channel):
            yield message

    async def _listen(self) -> None:
        import asyncpg

        async with self._lock:
            if self._listener is not None and not self._listener.is_closed():
                return
            self._listener = await asyncpg.connect(self.dsn)
            await self._listener.add_listener(PG_CHANNEL, self._received)
            self._listener.add_termination_listener(self._lost)

    def _received(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            msg = json.loads(payload)
            self.fanout.deliver(msg["c"], msg["m"].encode())
        except (ValueError, KeyError, TypeError):
            log.warning("malformed message on %s", channel)

    def _lost(self, connection: Any) -> None:
        """The listening connection dropped: reconnect. Messages meanwhile are lost, as with
        a Redis reconnect, so every subscriber is told (it rebuilds what it kept)."""
        self._listener = None
        self.fanout.lost()
        if self.fanout.channels:
            asyncio.get_running_loop().create_task(self._relisten())

    async def _relisten(self) -> None:
        delay = 0.1
        while self._listener is None and self.fanout.channels:
            try:
                await self._listen()
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await super().close()
        for conn in (self._listener, self._publisher):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2.0)
        self._listener = self._publisher = None
