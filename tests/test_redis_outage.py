"""Redis is an accelerator: while it is down writes still land in PostgreSQL and the API
answers; when it comes back the service uses it again without a restart."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import GraphQL
from recsys_helpers import RECOMMEND, seed
from recsys_helpers import events as events_of_seed

from gql.server.app import create_app
from storage.backends import RedisBackend

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="needs the redis-server binary to stop and start one")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int, workdir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("redis-server did not start")


async def cache_comes_back(client: TestClient, within: float = 15.0) -> bool:
    """Whether /ready reports the cache healthy again within ``within`` seconds (a loaded
    machine may miss the first ping's half-second timeout)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (await (await client.get("/ready")).json())["checks"]["cache"]:
            return True
        await asyncio.sleep(0.2)
    return False


async def test_writes_and_reads_survive_a_redis_outage(store, settings, tmp_path):
    port = free_port()
    redis = start_redis(port, tmp_path)
    original = store.cache
    store.cache = RedisBackend(f"redis://127.0.0.1:{port}/0")
    app = create_app(settings, store=store)
    q = """mutation($e: InteractionsRecordInput!) { itemUpsert(input: {item: {id: "i"}})
           { userErrors { code } } interactionsRecord(input: $e) { recordedCount } }"""
    events = {"interactions": [{"userId": "u", "itemId": "i", "type": "view"}]}
    try:
        async with TestClient(TestServer(app)) as client:
            ready = await (await client.get("/ready")).json()
            assert ready["checks"] == {"database": True, "cache": True}
            await seed(GraphQL(client))  # a catalogue, events and trained models

            redis.terminate()
            redis.wait(10)
            recs = await GraphQL(client)(RECOMMEND, {"u": "scifi-fan-1", "n": 5})
            assert len(recs["recommendations"]) == 5  # served without Redis
            resp = await client.post("/graphql", json={"query": q, "variables": {"e": events}})
            body = await resp.json()
            assert body["data"]["interactionsRecord"]["recordedCount"] == 1
            ready = await client.get("/ready")
            assert ready.status == 200  # degraded, still serving
            assert (await ready.json())["checks"] == {"database": True, "cache": False}
            assert store.cache.healthy is False

            redis = start_redis(port, tmp_path)
            resp = await client.post("/graphql", json={"query": q, "variables": {"e": events}})
            assert (await resp.json())["data"]["interactionsRecord"]["recordedCount"] == 1
            assert await cache_comes_back(client)
        assert await store.interactions.count("default") == 2 + len(events_of_seed())
    finally:
        await store.cache.close()
        store.cache = original
        redis.kill()
