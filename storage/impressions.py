"""Items served to each user lately, counted: the "write-back" of shown items that lets a
list rotate instead of pushing the same items at the user page after page.

With Redis, one hash per user (item pk -> times served), shared by the replicas and kept
``ttl`` seconds after the last list served; without it (or while it is away), a bounded
in-process cache. A user's counts are dropped once they cover more than ``MAX_ITEMS``
items, so a client serving long lists all day cannot grow them without bound.
"""

from __future__ import annotations

from cachetools import TTLCache

from storage.backends import CacheBackend, RedisBackend

#: users one process keeps without Redis (at most ~100 bytes per item counted: ~300 MB
#: if every one of them reached the cap)
MEMORY_USERS = 10_000
#: items counted per user (then the counts start again)
MAX_ITEMS = 300

RECORD = """
for i = 1, #ARGV - 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[#ARGV]) then redis.call('DEL', KEYS[1])
else redis.call('PEXPIRE', KEYS[1], ARGV[#ARGV - 1]) end
return 1
"""
READ = "return redis.call('HGETALL', KEYS[1])"


class ImpressionStore:
    def __init__(self, backend: CacheBackend, ttl: float) -> None:
        self.backend = backend if isinstance(backend, RedisBackend) else None
        self.ttl = ttl
        self._local: TTLCache[tuple[str, str], dict[int, int]] = TTLCache(
            maxsize=MEMORY_USERS, ttl=max(ttl, 1.0)
        )

    @staticmethod
    def _key(tenant: str, user: str) -> str:
        return f"shown:{tenant}:{user}"

    async def counts(self, tenant: str, user: str) -> dict[int, int]:
        """Times each item was served to the user within ``ttl`` of the last list."""
        if self.backend is not None:
            try:
                flat = await self.backend.run_script(READ, [self._key(tenant, user)], [])
                return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
            except ConnectionError:
                pass  # Redis away: what this process saw
        return dict(self._local.get((tenant, user), {}))

    async def record(self, tenant: str, user: str, pks: list[int]) -> None:
        if not pks:
            return
        if self.backend is not None:
            try:
                await self.backend.run_script(
                    RECORD,
                    [self._key(tenant, user)],
                    [*pks, int(self.ttl * 1000), MAX_ITEMS],
                )
                return
            except ConnectionError:
                pass
        seen = self._local.get((tenant, user), {})
        for pk in pks:
            seen[pk] = seen.get(pk, 0) + 1
        self._local[(tenant, user)] = seen if len(seen) <= MAX_ITEMS else {}

    async def forget(self, tenant: str, users: list[str]) -> None:
        """Erase the counts of deleted users (in Redis, and what this process kept)."""
        for user in users:
            self._local.pop((tenant, user), None)
        if self.backend is not None and users:
            await self.backend.delete(*(self._key(tenant, user) for user in users))
