"""Reads on every recommendation's path, in one database round trip each.

Through SQLAlchemy's pool a read costs a liveness ping, ``BEGIN``, the tenant's
row-level-security settings, the statement and ``ROLLBACK``: five round trips for one row.
The statements here name their tenant in every condition, so they run on a small asyncpg
pool of their own, as the service's role and outside any transaction: one round trip, a
prepared plan per connection. A connection that broke (PostgreSQL restarted) is replaced
and the read tried once more; if that fails too, the caller falls back to its SQLAlchemy
path, which reports the outage as every other query does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

#: what a broken or restarting server looks like to asyncpg
BROKEN = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
)


async def _keep(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: these reads change no session state (asyncpg's
    default reset would cost a round trip per read)."""


class HotReads:
    def __init__(self, url: str, size: int = 4, timeout: float = 10.0) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        #: called with each statement before it runs (instrumentation, tests)
        self.observers: list[Callable[[str], None]] = []

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=1,
                        max_size=self.size,
                        reset=_keep,
                        timeout=self.timeout,
                        server_settings={"application_name": "recograph-reads"},
                    )
        return self._pool

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | bool | None:
        """The first row (None: no row), or False when the database could not be read
        here (the caller then takes its usual path)."""
        for observe in self.observers:
            observe(sql)
        for attempt in range(2):
            try:
                pool = await self.pool()
                return await pool.fetchrow(sql, *args, timeout=self.timeout)
            except BROKEN as exc:
                log.debug("hot read failed (attempt %d): %s", attempt + 1, exc)
        return False

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
