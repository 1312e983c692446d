"""Ranked lists kept for their next pages.

A recommendation request that asks for its ``recommendationId`` or ``cursor`` has its whole
ranked list (the first ``PAGE_DEPTH`` items) stored under a new id; ``after: cursor`` then
serves the following items of that same list, so paging never repeats an item even while
events and models change the user's fresh ranking. Lists live in Redis (shared by the
replicas) or, without it, in a bounded in-process cache, for ``ttl`` seconds.
"""

from __future__ import annotations

import json
import uuid

from cachetools import TTLCache

from storage.backends import CacheBackend, RedisBackend

#: lists one process keeps without Redis
MEMORY_LISTS = 20_000


class PageStore:
    def __init__(self, backend: CacheBackend, ttl: float) -> None:
        self.backend = backend if isinstance(backend, RedisBackend) else None
        self.ttl = ttl
        self._local: TTLCache[str, bytes] = TTLCache(maxsize=MEMORY_LISTS, ttl=max(ttl, 1.0))

    async def put(self, tenant: str, user: str, items: bytes) -> str:
        """Keep a list of ``user``; its recommendation id."""
        rid = uuid.uuid4().hex
        value = json.dumps([tenant, user]).encode() + b"\n" + items
        if self.backend is not None:
            await self.backend.set(f"page:{rid}", value, self.ttl)
        else:
            self._local[rid] = value
        return rid

    async def get(self, tenant: str, user: str, rid: str) -> bytes | None:
        """The list kept under ``rid`` if it is this tenant's and user's and still kept."""
        if self.backend is not None:
            value = await self.backend.get(f"page:{rid}")
        else:
            value = self._local.get(rid)
        if value is None:
            return None
        head, _, items = value.partition(b"\n")
        if json.loads(head) != [tenant, user]:
            return None
        return items
