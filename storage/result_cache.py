"""The recommendation cache: finished answers, valid while nothing they depend on changed.

An answer is stored under a key the engine derives from the request (tenant, user, blend,
configs, filter, page, model versions) together with a *stamp*: the user's event version
and the tenant's catalogue version when it was computed. Writers bump those versions
before their mutation returns, so a lookup whose stamp differs is a miss, and an answer is
never served after an event of its user or a catalogue change it could depend on.

With Redis the answers and versions are shared by every replica (one round trip per
lookup). Without it, each process keeps its own bounded copy, and its versions are bumped
by its own writes and by the change messages of the other processes (the PostgreSQL bus).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from cachetools import TTLCache

from storage.backends import MemoryBackend, RedisBackend

log = logging.getLogger(__name__)

Stamp = tuple[int, int]
#: versions are kept a week, far longer than any answer; an expired or evicted one comes
#: back as a new value of the sequence, never an old one
VERSION_TTL_SECONDS = 7 * 86_400
#: memory of one process's answers without Redis
MEMORY_BYTES = 64 * 2**20
#: users whose versions one process remembers without Redis (older ones share a floor)
MEMORY_USERS = 1_000_000
#: with Redis, a catalogue version is bumped by the writer before other replicas have
#: applied its change (a pub/sub message away): answers computed under a version this
#: replica has known for less than this are served, not stored
SETTLE_SECONDS = 1.0
#: after change messages were lost, a replica stores nothing for this long: its catalogue
#: copy is rebuilt at the next request and its candidate sets expire within 5 s
MISSED_SECONDS = 10.0


#: the counter every version is drawn from (never expires: versions never repeat)
SEQUENCE = "rv:seq"


def _user_key(tenant: str, user: str) -> str:
    return f"rv:u:{len(tenant)}:{tenant}:{user}"


def _catalogue_key(tenant: str) -> str:
    return f"rv:c:{tenant}"


def _answer_key(key: str) -> str:
    return f"rc:{key}"


def _pack(stamp: Stamp, value: bytes) -> bytes:
    return json.dumps(stamp).encode() + b"\n" + value


def _unpack(raw: bytes) -> tuple[Stamp, bytes] | None:
    head, sep, value = raw.partition(b"\n")
    if not sep:
        return None
    try:
        user, catalogue = json.loads(head)
    except (ValueError, TypeError):
        return None
    return (int(user), int(catalogue)), value


class ResultCache:
    """Answers and the versions that keep them honest; ``ttl`` 0 turns caching off."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl

    @staticmethod
    def of(backend: Any, ttl: float) -> ResultCache:
        if isinstance(backend, RedisBackend):
            return RedisResultCache(backend, ttl)
        if isinstance(backend, MemoryBackend):
            return MemoryResultCache(ttl)
        return ResultCache(0)

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    async def lookup(self, tenant: str, user: str, key: str) -> tuple[bytes | None, Stamp]:
        """The answer stored under ``key`` if its stamp is current, and the current stamp
        (to store the answer with, after a miss)."""
        return None, (0, 0)

    async def store(self, tenant: str, key: str, stamp: Stamp, value: bytes) -> None:
        return None

    async def users_changed(self, tenant: str, users: Iterable[str], *, local: bool) -> None:
        """Events of ``users`` were stored: here (``local``) or by another process."""

    async def catalogue_changed(self, tenant: str, *, local: bool) -> None:
        """Items of ``tenant`` were written or deleted: here or by another process."""

    def missed_changes(self) -> None:
        """Change messages of other processes were lost (a subscriber fell behind)."""

    def forget(self) -> None:
        """Drop what this process keeps for itself (tests start from a clean slate)."""


class RedisResultCache(ResultCache):
    """Shared by every replica; only the process that wrote bumps a version."""

    def __init__(self, backend: RedisBackend, ttl: float) -> None:
        super().__init__(ttl)
        self.backend = backend
        #: a bump that failed leaves answers that may be stale in Redis: this process
        #: serves none until they have expired
        self._distrust_until = 0.0
        #: per tenant, the newest catalogue version seen here and since when
        self._catalogue_seen: dict[str, tuple[int, float]] = {}

    async def lookup(self, tenant: str, user: str, key: str) -> tuple[bytes | None, Stamp]:
        keys = [_user_key(tenant, user), _catalogue_key(tenant), _answer_key(key)]
        values = await self.backend.get_many(keys)
        if values is None:  # Redis is down: compute, don't store
            return None, (-1, -1)
        user_v, catalogue_v, raw = values
        stamp = (int(user_v or 0), int(catalogue_v or 0))
        seen = self._catalogue_seen.get(tenant)
        if seen is None or seen[0] != stamp[1]:
            self._catalogue_seen[tenant] = (stamp[1], time.monotonic())
        if raw is None or time.monotonic() < self._distrust_until:
            return None, stamp
        unpacked = _unpack(raw)
        if unpacked is None or unpacked[0] != stamp:
            return None, stamp
        return unpacked[1], stamp

    async def store(self, tenant: str, key: str, stamp: Stamp, value: bytes) -> None:
        seen = self._catalogue_seen.get(tenant)
        if seen is None or seen[0] != stamp[1] or stamp[0] < 0:
            return
        if time.monotonic() < self._distrust_until:
            return
        if time.monotonic() - seen[1] >= SETTLE_SECONDS:
            await self.backend.set(_answer_key(key), _pack(stamp, value), self.ttl)

    async def users_changed(self, tenant: str, users: Iterable[str], *, local: bool) -> None:
        if local:
            await self._stamp([_user_key(tenant, u) for u in set(users)])

    async def catalogue_changed(self, tenant: str, *, local: bool) -> None:
        if local:
            await self._stamp([_catalogue_key(tenant)])

    async def _stamp(self, keys: list[str]) -> None:
        if keys and not await self.backend.stamp_many(SEQUENCE, keys, VERSION_TTL_SECONDS):
            self._distrust_until = time.monotonic() + self.ttl

    def missed_changes(self) -> None:
        """This replica may have missed catalogue changes: what it computes until its copy
        and its candidate sets are rebuilt must not be stored for others."""
        self._distrust_until = max(self._distrust_until, time.monotonic() + MISSED_SECONDS)

    def forget(self) -> None:
        self._distrust_until = 0.0
        self._catalogue_seen.clear()


class MemoryResultCache(ResultCache):
    """One process's bounded copy. Versions come from one increasing sequence; a user
    forgotten to bound memory reads as the largest forgotten version (the floor), which
    is at least what any answer stored for them was stamped with: such answers are only
    served if nothing of theirs changed since, and otherwise miss."""

    def __init__(self, ttl: float) -> None:
        super().__init__(ttl)
        self._answers: TTLCache[str, tuple[Stamp, bytes]] = TTLCache(
            maxsize=MEMORY_BYTES, ttl=max(ttl, 1e-9), getsizeof=lambda e: len(e[1]) + 200
        )
        #: (tenant, user) -> version, oldest change first (a plain dict: writers touch
        #: every user of every batch, so this must cost well under a microsecond)
        self._users: dict[tuple[str, str], int] = {}
        self._catalogues: dict[str, int] = {}
        self._sequence = 0
        self._floor = 0

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def _user_version(self, tenant: str, user: str) -> int:
        return self._users.get((tenant, user), self._floor)

    async def lookup(self, tenant: str, user: str, key: str) -> tuple[bytes | None, Stamp]:
        stamp = (self._user_version(tenant, user), self._catalogues.get(tenant, 0))
        hit = self._answers.get(key)
        if hit is None or hit[0] != stamp:
            return None, stamp
        return hit[1], stamp

    async def store(self, tenant: str, key: str, stamp: Stamp, value: bytes) -> None:
        if len(value) + 200 <= MEMORY_BYTES // 16:
            self._answers[key] = (stamp, value)

    async def users_changed(self, tenant: str, users: Iterable[str], *, local: bool) -> None:
        versions = self._users
        for user in set(users):
            self._sequence += 1
            key = (tenant, user)
            versions.pop(key, None)  # re-inserted last: the dict stays oldest-first
            versions[key] = self._sequence
        while len(versions) > MEMORY_USERS:
            evicted = versions.pop(next(iter(versions)))
            self._floor = max(self._floor, evicted)

    async def catalogue_changed(self, tenant: str, *, local: bool) -> None:
        self._catalogues[tenant] = self._next()

    def missed_changes(self) -> None:
        self._answers.clear()

    def forget(self) -> None:
        self._answers.clear()
