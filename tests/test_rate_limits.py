"""Token buckets per API key and per tenant, shared through Redis: 429 with Retry-After."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gql.server.app import create_app
from storage.backends import MemoryBackend

QUERY = {"query": "{ __typename }"}


@pytest.fixture
async def limited(store, settings):
    _, fast = await store.api_keys.create("default", "fast", ["read"])
    _, other = await store.api_keys.create("default", "other", ["read"])
    tight = settings.model_copy(update={
        "require_api_key": True, "rate_limit_per_key": 2.0, "rate_limit_per_tenant": 100.0,
        "rate_limit_burst_seconds": 2.0})
    async with TestClient(TestServer(create_app(tight, store=store))) as client:
        yield client, fast, other


async def test_a_key_over_its_rate_gets_429_with_retry_after(limited):
    client, fast, other = limited
    statuses = []
    for _ in range(8):
        resp = await client.post("/graphql", json=QUERY,
                                  headers={"Authorization": f"Bearer {fast}"})
        statuses.append(resp.status)
    assert statuses[:4] == [200] * 4  # a burst of 2 s × 2 req/s
    assert 429 in statuses
    resp = await client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {fast}"})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # another key of the same tenant has its own bucket
    ok = await client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {other}"})
    assert ok.status == 200


async def test_memory_bucket_allows_the_burst_then_says_how_long_to_wait():
    cache = MemoryBackend()
    assert [await cache.take("k", 0.5, 2.0) for _ in range(2)] == [0.0, 0.0]
    wait = await cache.take("k", 0.5, 2.0)
    assert 1.9 < wait <= 2.0  # one token takes 2 s at 0.5 tokens/s
    assert await cache.take("other", 0.5, 2.0) == 0.0
