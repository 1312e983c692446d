"""Reads on every recommendation's path, in one database round trip each.

Through SQLAlchemy's pool a read costs a liveness ping, ``BEGIN``, the tenant's
row-level-security settings, the statement and ``ROLLBACK``: five round trips for one row.
The statements here name their tenant in every condition, so they run on a small asyncpg
pool of their own, as the service's role and outside any transaction: one round trip, a
prepared plan per connection. A connection that broke (PostgreSQL restarted) is replaced
and the read tried once more; if that fails too, or PostgreSQL reports any error, the
caller falls back to its SQLAlchemy path (for ``BACK_OFF_SECONDS``), which reports an
outage as every other query does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from storage.sql import TRIGRAM_THRESHOLD

log = logging.getLogger(__name__)

#: what makes the caller take its usual path: a broken or restarting server, and any error
#: PostgreSQL reports (too many connections, a statement timeout, a pooler's refusal of
#: prepared statements, row-level security applying to the service's role, ...)
BROKEN = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresError,
    ValueError,
)
#: after a failure, this path is not tried again for this long
BACK_OFF_SECONDS = 5.0


async def _keep(conn: asyncpg.Connection) -> None:
    """Nothing to reset on release: these reads change no session state (asyncpg's
    default reset would cost a round trip per read)."""


class HotReads:
    def __init__(self, url: str, size: int = 4, timeout: float = 3.0) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        #: after failures, reads take the usual path until then
        self._resting_until = 0.0
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
                        # these statements name their tenant: if the role were subject to
                        # row-level security, fail loudly rather than read nothing
                        server_settings={
                            "application_name": "recograph-reads",
                            "row_security": "off",
                            # search (``repositories/search.py``): filtered HNSW scans go on
                            # while filters drop the nearest rows; pg_trgm's cut for a match
                            "hnsw.iterative_scan": "relaxed_order",
                            "pg_trgm.word_similarity_threshold": str(TRIGRAM_THRESHOLD),
                        },
                    )
        return self._pool

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | bool | None:
        """The first row (None: no row), or False when the database could not be read
        here (the caller then takes its usual path)."""
        return await self._read("fetchrow", sql, args)

    async def fetch(self, sql: str, *args: Any, retry: bool = True) -> list[asyncpg.Record] | bool:
        """All rows, or False when the database could not be read here (as ``fetchrow``);
        without ``retry`` a failed read is not tried again (the caller's own path is as
        quick, and a slow statement would only time out twice)."""
        rows: list[asyncpg.Record] | bool = await self._read("fetch", sql, args, retry)
        return rows

    async def _read(self, method: str, sql: str, args: tuple[Any, ...], retry: bool = True) -> Any:
        for observe in self.observers:
            observe(sql)
        if time.monotonic() < self._resting_until:
            return False
        for attempt in range(2 if retry else 1):
            try:
                pool = await self.pool()
                async with pool.acquire(timeout=self.timeout) as conn:
                    return await getattr(conn, method)(sql, *args, timeout=self.timeout)
            except BROKEN as exc:
                log.debug("hot read failed (attempt %d): %s", attempt + 1, exc)
        self._resting_until = time.monotonic() + BACK_OFF_SECONDS
        return False

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
