"""Live events: one Redis pub/sub connection per replica however many subscribers, bounded
per-subscriber queues, and slow consumers dropped instead of buffered without limit."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from conftest import REDIS_URL, Socket, eventually, subscribers, until_subscribed

from gql.server.app import create_app
from gql.server.database import limits_of
from storage.backends import MemoryBackend, RedisBackend, SlowConsumer, make_backend
from storage.store import Store

EVENTS = "subscription { interactionRecorded { userId } }"
RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i)
  { recordedCount } }"""


async def pubsub_connections() -> int:
    """Redis clients currently subscribed to something."""
    r = aioredis.Redis.from_url(REDIS_URL)
    try:
        clients = await r.client_list()
    finally:
        await r.aclose()
    return sum(1 for c in clients if int(c.get("sub", 0)) + int(c.get("psub", 0)) > 0)


async def test_many_subscriptions_share_one_redis_connection(client, gql, store):
    await gql('mutation { itemUpsert(input: {item: {id: "i"}}) { userErrors { code } } }')
    await until_subscribed(store, "events:default")  # the event follower
    listening = subscribers(store, "events:default")
    before = await pubsub_connections()
    sockets = [await (await Socket.open(client)).acked() for _ in range(3)]
    for sock in sockets:
        for n in range(20):
            await sock.subscribe(str(n), EVENTS)
    await until_subscribed(store, "events:default", listening + 60)
    assert await pubsub_connections() - before <= 1
    await gql(RECORD, {"i": {"interactions": [{"userId": "u", "itemId": "i", "type": "view"}]}})
    for sock in sockets:
        got = set()
        while len(got) < 20:
            msg = await sock.message()
            if msg["type"] == "next":
                assert msg["payload"]["data"]["interactionRecorded"] == {"userId": "u"}
                got.add(msg["id"])
        await sock.close()
    # rate limiting still reaches Redis (it used to fail open once subscriptions filled
    # the pool)
    cache = make_backend(REDIS_URL, "ratetest:")
    try:
        waits = [await cache.take("k", 1.0, 1.0) for _ in range(3)]
        assert waits[0] == 0 and waits[-1] > 0
    finally:
        await cache.close()


async def _subscribed(cache: RedisBackend, channel: str) -> bool:
    numsub = await cache._redis.pubsub_numsub(cache.prefix + channel)
    return bool(numsub and numsub[0][1] > 0)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_a_subscriber_that_falls_behind_is_dropped(backend):
    cache = MemoryBackend() if backend == "memory" else RedisBackend(REDIS_URL, "slowtest:")
    cache.fanout.queue_size = 50
    slow = cache.subscribe("chan")
    fast = cache.subscribe("chan")
    received: list[bytes] = []

    async def consume() -> None:
        async for message in fast:
            received.append(message)

    try:
        first = asyncio.ensure_future(slow.__anext__())  # subscribes, then never reads on
        consumer = asyncio.create_task(consume())
        await eventually(lambda: cache.fanout.subscribers() == 2)
        if isinstance(cache, RedisBackend):
            await eventually(lambda: _subscribed(cache, "chan"))
        for n in range(120):
            await cache.publish("chan", str(n).encode())
            await asyncio.sleep(0)  # a publisher that lets others run
        await eventually(lambda: len(received) == 120)
        assert (await first) == b"0"
        with pytest.raises(SlowConsumer):
            for _ in range(200):
                await asyncio.wait_for(slow.__anext__(), 2)
        assert len(received) == 120  # the one who keeps up loses nothing
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    finally:
        await slow.aclose()
        await fast.aclose()
        await cache.close()
    assert cache.fanout.subscribers() == 0  # leaving releases everything


async def test_a_slow_socket_is_closed_with_try_again_later(settings, database_url):
    # in-process delivery, so that a burst arrives before the subscriber can read
    store = await Store.open(database_url, None, limits=limits_of(settings),
                             subscription_queue_size=3, cross_process_bus=False)
    try:
        async with TestClient(TestServer(create_app(settings, store=store))) as client:
            await client.post("/graphql", json={"query": 'mutation { itemUpsert(input: {item: '
                                                '{id: "i"}}) { created } }'})
            sock = await (await Socket.open(client)).acked()
            listening = subscribers(store, "events:default")
            await sock.subscribe("1", EVENTS)
            await until_subscribed(store, "events:default", listening + 1)
            events = [{"userId": f"u{n}", "itemId": "i", "type": "view"} for n in range(600)]
            await client.post("/graphql", json={"query": RECORD,
                                                "variables": {"i": {"interactions": events}}})
            while True:
                msg = await sock.message()
                if msg["type"] == "closed":
                    break
            assert (msg["code"], msg["reason"]) == (1013, "slow consumer")
    finally:
        await store.close()


async def test_without_redis_processes_share_messages_through_postgresql(database_url):
    """Several workers of `recograph serve` on the embedded default have no Redis: live
    events, model swaps and catalogue changes cross processes by LISTEN/NOTIFY."""
    from storage.backends.pgbus import PostgresBusBackend
    from storage.database import libpq_url

    one, two = PostgresBusBackend(libpq_url(database_url)), PostgresBusBackend(
        libpq_url(database_url))
    listener = two.subscribe("events:x")
    try:
        first = asyncio.ensure_future(listener.__anext__())
        await eventually(lambda: two._listener is not None and two.fanout.subscribers() == 1)
        await one.publish("events:x", b'{"hello": "world"}')
        await one.publish("events:y", b"not for this subscriber")
        await one.publish("events:x", b"second")
        assert await asyncio.wait_for(first, 5) == b'{"hello": "world"}'
        assert await asyncio.wait_for(listener.__anext__(), 5) == b"second"
    finally:
        await listener.aclose()
        await one.close()
        await two.close()
