"""Shared state beside PostgreSQL: a key/value cache, counters and pub/sub.

``RedisBackend`` lets many API replicas share it; ``MemoryBackend`` is the in-process stand-in
for the single-process embedded default. Redis is an accelerator, never the source of truth:
every call here is best effort, and an outage degrades to "no cache, no live events" while
writes keep landing in PostgreSQL. ``healthy`` reports the state for ``/ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from storage.tasks import stop_task

log = logging.getLogger(__name__)

#: messages a subscriber may fall behind by before it is dropped
QUEUE_SIZE = 1000


class SlowConsumer(Exception):
    """A subscriber fell more than its queue behind and was dropped."""


class _Subscriber:
    """One subscriber's bounded queue. Delivery never blocks the publisher: a subscriber
    whose queue is full is dropped (its next read raises SlowConsumer), so one stuck client
    costs a bounded amount of memory and delays nobody else."""

    __slots__ = ("dropped", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size + 1)
        self.dropped = False

    def deliver(self, message: bytes) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= self.queue.maxsize - 1:
            self.dropped = True
            self.queue.put_nowait(None)  # wakes the reader, who then raises
            return
        self.queue.put_nowait(message)

    def drop(self) -> None:
        """Messages were lost: the next read raises SlowConsumer."""
        if not self.dropped:
            self.dropped = True
            self.queue.put_nowait(None)

    async def next(self) -> bytes:
        message = await self.queue.get()
        if message is None:
            raise SlowConsumer("subscriber fell behind and was dropped")
        return message


class Fanout:
    """In-process fan-out of channel messages to local subscribers."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self.channels: dict[str, set[_Subscriber]] = defaultdict(set)

    def add(self, channel: str) -> tuple[_Subscriber, bool]:
        """A new subscriber, and whether it is the channel's first."""
        sub = _Subscriber(self.queue_size)
        first = not self.channels[channel]
        self.channels[channel].add(sub)
        return sub, first

    def remove(self, channel: str, sub: _Subscriber) -> bool:
        """Forget ``sub``; True when the channel has no subscriber left."""
        subs = self.channels.get(channel)
        if subs is None:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self.channels[channel]
        return True

    def deliver(self, channel: str, message: bytes) -> None:
        for sub in list(self.channels.get(channel, ())):
            sub.deliver(message)

    def lost(self) -> None:
        """Messages may have been lost (the pub/sub connection was down): every subscriber
        is told, so it rebuilds what it kept from them."""
        for subs in list(self.channels.values()):
            for sub in list(subs):
                sub.drop()

    def subscribers(self) -> int:
        return sum(len(s) for s in self.channels.values())


class CacheBackend(Protocol):
    healthy: bool
    fanout: Fanout

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def incr(self, key: str, amount: float = 1.0) -> float | None: ...
    async def publish(self, channel: str, message: bytes) -> None: ...
    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages of ``channel`` from every replica; raises SlowConsumer when this
        subscriber falls a whole queue behind."""
        ...

    async def take(self, key: str, rate: float, burst: float) -> float:
        """Token bucket: take one token; 0 when allowed, else seconds until one is free."""
        ...

    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


async def forget_on_messages(
    cache: CacheBackend, channel: str, forget: Callable[[str | None], None]
) -> None:
    """Forever: each message on ``channel`` names a tenant (``{"tenant": ...}``) whose
    cached copies ``forget`` drops; an unreadable message, or messages lost to a slow
    reader, drop every tenant's (``forget(None)``)."""
    while True:
        try:
            async for raw in cache.subscribe(channel):
                try:
                    tenant = json.loads(raw).get("tenant")
                except (ValueError, AttributeError):
                    tenant = None
                forget(tenant if isinstance(tenant, str) else None)
        except SlowConsumer:
            forget(None)


class MemoryBackend:
    def __init__(self) -> None:
        self.healthy = True
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._counters: dict[str, float] = defaultdict(float)
        self.fanout = Fanout()
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
        self.fanout.deliver(channel, message)

    async def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        sub, _ = self.fanout.add(channel)
        try:
            while True:
                yield await sub.next()
        finally:
            self.fanout.remove(channel, sub)

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
        self.fanout.channels.clear()


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


# KEYS[1] the sequence, KEYS[2..] keys to stamp; ARGV[1] their expiry in seconds.
STAMP = """
local v = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], v, 'EX', ARGV[1]) end
return v
"""


class RedisBackend:
    """Redis for everything shared. Pub/sub uses ONE connection per process, whatever the
    number of subscribers: messages are fanned out in-process to bounded queues."""

    def __init__(self, url: str, prefix: str = "recograph:") -> None:
        from redis.asyncio import Redis

        self.prefix = prefix
        self.healthy = True
        self._redis = Redis.from_url(
            url,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            health_check_interval=10,
            client_name="recograph",
        )
        self.fanout = Fanout()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pubsub_lock = asyncio.Lock()
        self._closed = False

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
        return value.encode() if isinstance(value, str) else value

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

    async def get_many(self, keys: list[str]) -> list[bytes | None] | None:
        """Several values in one round trip; None when Redis cannot be reached."""
        try:
            values = await self._redis.mget([self._k(k) for k in keys])
        except Exception as exc:
            self._failed("mget", exc)
            return None
        self.healthy = True
        return [v.encode() if isinstance(v, str) else v for v in values]

    async def run_script(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua ``script`` over ``keys`` (prefixed here) in one round trip; raises
        ``ConnectionError`` when Redis could not be reached."""
        try:
            result = await self._redis.eval(script, len(keys), *(self._k(k) for k in keys), *args)
        except Exception as exc:
            self._failed("script", exc)
            raise ConnectionError(str(exc)) from exc
        self.healthy = True
        return result

    async def stamp_many(self, sequence: str, keys: list[str], ttl: float) -> bool:
        """Set each of ``keys`` (kept ``ttl`` seconds) to the next value of the counter
        ``sequence``, atomically and in one round trip; False if Redis could not be
        reached. Values never repeat, even for a key that expired or was evicted meanwhile
        (the sequence itself has no expiry)."""
        try:
            await self._redis.eval(
                STAMP, 1 + len(keys), self._k(sequence), *(self._k(k) for k in keys), int(ttl)
            )
        except Exception as exc:
            self._failed("stamp", exc)
            return False
        self.healthy = True
        return True

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
        """Messages of ``channel``, through this process's one pub/sub connection."""
        sub, first = self.fanout.add(channel)
        try:
            if first:
                await self._listen(channel)
            while True:
                yield await sub.next()
        finally:
            if self.fanout.remove(channel, sub):
                await self._unlisten(channel)

    async def _listen(self, channel: str) -> None:
        async with self._pubsub_lock:
            if self._pubsub is None:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await self._pubsub.subscribe(self._k(channel))
            except Exception as exc:  # the reader resubscribes once Redis is back
                self._failed("subscribe", exc)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="redis-pubsub-reader")

    async def _unlisten(self, channel: str) -> None:
        async with self._pubsub_lock:
            if self._pubsub is None:
                return
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(self._k(channel))

    async def _read(self) -> None:
        """The reader of the shared connection; reconnects with back-off."""
        delay = 0.1
        cut = len(self.prefix)
        delivered = 0
        while not self._closed:
            try:
                if not self.fanout.channels:
                    await asyncio.sleep(0.2)
                    continue
                msg = await self._pubsub.get_message(timeout=1.0)
                delay = 0.1
                if msg is not None and msg.get("type") == "message":
                    raw = msg["channel"]
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    self.fanout.deliver(name[cut:], msg["data"])
                    delivered += 1
                    if delivered % 100 == 0:  # let subscribers drain a buffered burst
                        await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("subscribe", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                await self._resubscribe()
                self.fanout.lost()  # what was published meanwhile never arrives

    async def _resubscribe(self) -> None:
        async with self._pubsub_lock:
            old, self._pubsub = self._pubsub, self._redis.pubsub(ignore_subscribe_messages=True)
            if old is not None:
                with contextlib.suppress(Exception, asyncio.TimeoutError):
                    await asyncio.wait_for(old.aclose(), 1.0)
            channels = [self._k(c) for c in self.fanout.channels]
            if channels:
                try:
                    await self._pubsub.subscribe(*channels)
                    self.healthy = True
                except Exception as exc:
                    self._failed("subscribe", exc)

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
        self._closed = True
        await stop_task(self._reader, insist=True)
        if self._pubsub is not None:
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(self._pubsub.aclose(), 1.0)
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def make_backend(
    redis_url: str | None,
    prefix: str = "recograph:",
    queue_size: int = QUEUE_SIZE,
    database_url: str | None = None,
) -> CacheBackend:
    """Redis when configured; otherwise in-process caches, with messages between processes
    through PostgreSQL's LISTEN/NOTIFY when a database is given."""
    backend: CacheBackend
    if redis_url:
        backend = RedisBackend(redis_url, prefix)
    elif database_url:
        from storage.backends.pgbus import PostgresBusBackend

        backend = PostgresBusBackend(database_url)
    else:
        backend = MemoryBackend()
    backend.fanout.queue_size = queue_size
    return backend
