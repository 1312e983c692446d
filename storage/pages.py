"""Ranked lists kept for their next pages.

A recommendation request that asks for its ``recommendationId`` or ``cursor`` has its whole
ranked list (the first ``PAGE_DEPTH`` items) stored under a new id; ``after: cursor`` then
serves the following items of that same list, so paging never repeats an item even while
events and models change the user's fresh ranking. Lists live in Redis (shared by the
replicas; at most ``TENANT_LISTS`` per tenant, the oldest dropped first) or, without it (or
while it is away), in a bounded in-process cache, for ``ttl`` seconds.
"""

from __future__ import annotations

import json
import time
import uuid

from cachetools import TTLCache

from storage.backends import CacheBackend, RedisBackend

#: lists one process keeps without Redis (~15 KB each with reasons) ...
MEMORY_LISTS = 5_000
#: ... and lists one tenant keeps in Redis: the oldest go first, so a client that asks for
#: cursors on every request of every user cannot grow Redis without bound
TENANT_LISTS = 20_000

#: keep a list; drop the tenant's oldest beyond the cap
PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #popped, 2 do redis.call('DEL', ARGV[6] .. popped[i]) end
end
return 1
"""


class PageStore:
    def __init__(self, backend: CacheBackend, ttl: float) -> None:
        self.backend = backend if isinstance(backend, RedisBackend) else None
        self.ttl = ttl
        self._local: TTLCache[str, bytes] = TTLCache(maxsize=MEMORY_LISTS, ttl=max(ttl, 1.0))

    async def put(self, tenant: str, user: str, items: bytes, rid: str | None = None) -> str:
        """Keep a list of ``user`` (under ``rid``, or a new id); its recommendation id."""
        rid = rid or uuid.uuid4().hex
        value = json.dumps([tenant, user]).encode() + b"\n" + items
        if self.backend is not None:
            try:
                await self.backend.run_script(
                    PUT,
                    [f"page:{rid}", f"pages:{tenant}"],
                    [
                        value,
                        int(self.ttl * 1000),
                        time.time(),
                        rid,
                        TENANT_LISTS,
                        self.backend.prefix + "page:",
                    ],
                )
                return rid
            except ConnectionError:
                pass  # Redis away: this process keeps it (another replica cannot page it)
        self._local[rid] = value
        return rid

    async def get(self, tenant: str, user: str, rid: str) -> bytes | None:
        """The list kept under ``rid`` if it is this tenant's and user's and still kept."""
        value = self._local.get(rid)
        if value is None and self.backend is not None:
            value = await self.backend.get(f"page:{rid}")
        if value is None:
            return None
        head, _, items = value.partition(b"\n")
        if json.loads(head) != [tenant, user]:
            return None
        return items
