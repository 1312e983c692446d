"""Shared state beside PostgreSQL: a key/value cache, counters and pub/sub.

``RedisBackend`` lets many API replicas share it; ``MemoryBackend`` is the in-process stand-in
for the single-process embedded default. Redis is an accelerator, never the source of truth:
every call here is best effort, and an outage degrades to "no cache, no live events" while
writes keep landing in PostgreSQL. ``healthy`` reports the state for ``/ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

log = logging.getLogger(__name__)


class CacheBackend(Protocol):
    healthy: bool

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def incr(self, key: str, amount: float = 1.0) -> float | None: ...
    async def publish(self, channel: str, message: bytes) -> None: ...
    def subscribe(self, channel: str) -> AsyncIterator[bytes]: ...
    async def take(self, key: str, rate: float, burst: float) -> float:
        """Token bucket: take one token; 0 when allowed, else seconds until one is free."""
        ...

    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryBackend:
    def __init__(self) -> None:
        self.healthy = True
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._counters: dict[str, float] = defaultdict(float)
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def get(self, key: str) -> bytes | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        value, expires = hit
        if expires is not None and expires < time.monotonic():
            del self._data[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)

    async def delete(self, *keys: str) -> None:
        for k in keys:
            self._data.pop(k, None)
            self._counters.pop(k, None)

    async def incr(self, key: str, amount: float = 1.0) -> float | None:
        self._counters[key] += amount
        return self._counters[key]

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.qsize() < 1000:  # a stuck subscriber must not grow memory forever
                queue.put_nowait(message)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribers[channel].add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers[channel].discard(queue)

    async def take(self, key: str, rate: float, burst: float) -> float:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()


# KEYS[1] bucket; ARGV rate (tokens/s), burst. Returns seconds to wait (0 = allowed).
TOKEN_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisBackend:
    def __init__(self, url: str, prefix: str = "recograph:") -> None:
        from redis.asyncio import Redis

        self.prefix = prefix
        self.healthy = True
        self._redis = Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=10
        )

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _failed(self, op: str, exc: Exception) -> None:
        if self.healthy:
            log.warning("redis %s failed, continuing without it: %s", op, exc)
        self.healthy = False

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._k(key))
        except Exception as exc:
            self._failed("get", exc)
            return None
        self.healthy = True
        return value  # type: ignore[no-any-return]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        try:
            await self._redis.set(self._k(key), value, px=int(ttl * 1000) if ttl else None)
            self.healthy = True
        except Exception as exc:
            self._failed("set", exc)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._redis.delete(*(self._k(k) for k in keys))
            self.healthy = True
        except Exception as exc:
            self._failed("delete", exc)

    async def incr(self, key: str, amount: float = 1.0) -> float | None:
        try:
            value = await self._redis.incrbyfloat(self._k(key), amount)
        except Exception as exc:
            self._failed("incr", exc)
            return None
        self.healthy = True
        return float(value)

    async def publish(self, channel: str, message: bytes) -> None:
        try:
            await self._redis.publish(self._k(channel), message)
            self.healthy = True
        except Exception as exc:
            self._failed("publish", exc)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages of ``channel``; reconnects with back-off while Redis is away."""
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._k(channel))
                delay = 0.1
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None:
                        yield msg["data"]
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("subscribe", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                # bounded: closing a connection that was cancelled mid-read can block
                with contextlib.suppress(Exception, asyncio.TimeoutError):
                    await asyncio.wait_for(pubsub.aclose(), 1.0)

    async def take(self, key: str, rate: float, burst: float) -> float:
        """Atomic in Redis, so every replica draws from the same bucket. While Redis is
        down requests are let through (fail open): availability over precise limits."""
        try:
            wait = await self._redis.eval(TOKEN_BUCKET, 1, self._k(key), rate, burst)
        except Exception as exc:
            self._failed("rate limit", exc)
            return 0.0
        self.healthy = True
        return float(wait)

    async def ping(self) -> bool:
        try:
            await self._redis.ping()
        except Exception as exc:
            self._failed("ping", exc)
            return False
        self.healthy = True
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def make_backend(redis_url: str | None, prefix: str = "recograph:") -> CacheBackend:
    return RedisBackend(redis_url, prefix) if redis_url else MemoryBackend()
