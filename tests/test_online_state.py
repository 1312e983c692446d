"""Online state shared by replicas: a user's history kept in Redis and updated by every
event (so any replica serves the fresh history without reading PostgreSQL), items used
together in a session, and time-decayed trending counters; bounded, and erased with the
user. Without Redis each process keeps the counters and pairs itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import GraphQL, eventually, reset
from recsys_helpers import BULK_ITEMS, TRAIN, seed

from engines.algorithm import Query, RecordedEvent
from gql.server.app import create_app
from gql.server.database import limits_of
from storage.engine_storage import HOT_HISTORY, StoreEngineStorage
from storage.online_state import OnlineLimits, OnlineState, RedisOnlineState
from storage.store import Store

LIST = """query($u: String!) { recommendations(userId: $u, first: 8) { item { itemId } } }"""
RECORD = """mutation($u: String!, $i: String!, $t: DateTime) { interactionRecord(input:
  {interaction: {userId: $u, itemId: $i, type: "purchase", timestamp: $t}})
  { recordedCount userErrors { field message } } }"""
TOGETHER = """query($i: String!, $n: Int! = 10, $f: RecommendationFilterInput) {
  boughtTogether(itemId: $i, first: $n, filter: $f) {
    score item { itemId } reasons { algorithm score } } }"""
DELETE_USER = """mutation($u: String!) { userDelete(input: {id: $u}) { userErrors { code } } }"""
USER = "scifi-fan-1"
T = "2026-03-01T12:%02d:00Z"


@pytest.fixture
async def replica(store: Store, settings: Any) -> AsyncIterator[GraphQL]:
    """A second API replica: its own store (pools, catalogue copy, models) on the same
    PostgreSQL and Redis."""
    other = await Store.open(settings.database_url or "", settings.redis_url,
                             limits=limits_of(settings))
    try:
        async with TestClient(TestServer(create_app(settings, store=other))) as client:
            yield GraphQL(client)
    finally:
        await other.close()


def history_sql(sql_counter: Any) -> int:
    """Reads of a user's history from PostgreSQL (not the online copy)."""
    return sum("FROM users u" in s and "interactions" in s for s in sql_counter.statements)


async def ids(gql: GraphQL, user: str = USER) -> list[str]:
    return [r["item"]["itemId"] for r in (await gql(LIST, {"u": user}))["recommendations"]]


async def test_a_history_kept_in_redis_stays_fresh_on_every_replica(gql, replica, sql_counter):
    await seed(gql)
    await replica(TRAIN, {"i": {}})
    first = await ids(gql)  # read from PostgreSQL, then kept
    before = history_sql(sql_counter)
    assert await ids(gql) == first and history_sql(sql_counter) == before  # from Redis now
    # an event written through the other replica updates the kept history at once
    done = await replica(RECORD, {"u": USER, "i": first[0], "t": None})
    assert done["interactionRecord"]["recordedCount"] == 1
    after = await ids(gql)
    assert first[0] not in after  # seen now: excluded, though no replica re-read PostgreSQL
    assert history_sql(sql_counter) == before


async def test_an_event_between_reading_and_keeping_a_history_keeps_it_out(gql, store):
    await seed(gql, train=False)
    online = store.online
    assert isinstance(online, RedisOnlineState)
    kept, token = await online.history("default", USER)
    assert kept is None and token is not None
    query = await pg_history(store)
    # an event of the user lands after PostgreSQL was read, before the copy is kept
    await gql(RECORD, {"u": USER, "i": "scifi-5", "t": None})
    await online.remember("default", USER, token, query)
    assert (await online.history("default", USER))[0] is None  # not kept: it lacks the event
    # read again, it is kept, with the event
    await store_history(store)
    kept, _ = await online.history("default", USER)
    assert kept is not None and len(kept) == len(query) + 1


async def store_history(store: Store, user: str = USER) -> Query:
    """The history as a recommendation reads it (and keeps it online)."""
    return await StoreEngineStorage(store).user_history("default", user, 500)


async def pg_history(store: Store, user: str = USER) -> Query:
    """The history as PostgreSQL has it (nothing kept online)."""
    row: Any = await store.hot.fetchrow(HOT_HISTORY, "default", user, 500)
    return Query(int(row["id"]), np.asarray(row["items"], np.int64),
                 np.asarray(row["weights"], np.float32), np.asarray(row["times"]), 0.0)


async def test_only_short_histories_are_kept_and_a_long_one_is_dropped(gql, store):
    await seed(gql, train=False)  # each fan has 8 events
    assert isinstance(store.online, RedisOnlineState)
    small = RedisOnlineState(store.online.backend, OnlineLimits(history_size=10))
    _, token = await small.history("default", USER)
    query = await pg_history(store)
    await small.remember("default", USER, token, query)
    assert len((await small.history("default", USER))[0] or ()) == 8
    event = RecordedEvent(USER, "scifi-9", query.user_id or 0, 9, "view", 1.0, None, 1e9)
    await small.record("default", [event, replace(event, timestamp=1.5e9)])
    kept = (await small.history("default", USER))[0]
    assert kept is not None and len(kept) == 10 and kept.times[0] == 1.5e9  # newest first
    await small.record("default", [replace(event, timestamp=2e9)])  # 11 > 10: dropped
    assert (await small.history("default", USER))[0] is None
    # a history as long as the limit is never kept
    tiny = RedisOnlineState(small.backend, OnlineLimits(history_size=8))
    _, token = await tiny.history("default", "romance-fan-1")
    await tiny.remember("default", "romance-fan-1", token,
                        await pg_history(store, "romance-fan-1"))
    assert (await tiny.history("default", "romance-fan-1"))[0] is None


async def test_a_deleted_user_leaves_nothing_online(gql, store):
    await seed(gql)
    await ids(gql)
    assert (await store.online.history("default", USER))[0] is not None
    assert (await gql(DELETE_USER, {"u": USER}))["userDelete"]["userErrors"] == []
    assert (await store.online.history("default", USER))[0] is None
    # the same id comes back as a new user: nothing of the old history is recommended from
    await gql(RECORD, {"u": USER, "i": "romance-3", "t": None})
    kept = await store_history(store)
    assert len(kept) == 1


async def shop(gql: GraphQL) -> None:
    items = [{"id": i, "title": i} for i in ("lamp", "bulb", "shade", "desk")]
    assert (await gql(BULK_ITEMS, {"i": {"items": items}}))["itemsBulkUpsert"]["userErrors"] == []


async def test_items_used_together_are_counted_as_events_arrive_on_any_replica(gql, replica):
    await shop(gql)
    # one session (minutes apart) of one user, through one replica
    for minute, item in enumerate(["lamp", "bulb", "shade"]):
        await gql(RECORD, {"u": "shopper", "i": item, "t": T % minute})
    # the same pair again by another user, and a purchase hours later (another session)
    await gql(RECORD, {"u": "shopper-2", "i": "lamp", "t": T % 0})
    await gql(RECORD, {"u": "shopper-2", "i": "bulb", "t": T % 5})
    await gql(RECORD, {"u": "shopper-2", "i": "desk", "t": "2026-03-01T20:00:00Z"})
    found = (await replica(TOGETHER, {"i": "lamp"}))["boughtTogether"]
    assert [r["item"]["itemId"] for r in found] == ["bulb", "shade"]
    assert [r["score"] for r in found] == [2.0, 1.0]
    assert found[0]["reasons"] == [{"algorithm": "together", "score": 1.0}]
    filtered = await replica(TOGETHER, {"i": "lamp", "f": {"excludeIds": ["bulb"]}})
    assert [r["item"]["itemId"] for r in filtered["boughtTogether"]] == ["shade"]
    missing = await replica(TOGETHER, {"i": "no-such-item"}, expect_errors=True)
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_without_redis_each_process_counts_pairs_from_the_event_stream(settings,
                                                                            database_url):
    store = await Store.open(database_url, None, limits=limits_of(settings))
    try:
        await reset(store)
        assert type(store.online) is OnlineState
        async with TestClient(TestServer(create_app(settings, store=store))) as client:
            gql = GraphQL(client)
            await shop(gql)
            await gql(RECORD, {"u": "shopper", "i": "lamp", "t": T % 0})
            await gql(RECORD, {"u": "shopper", "i": "desk", "t": T % 3})

            async def paired() -> bool:
                found = (await gql(TOGETHER, {"i": "desk"}))["boughtTogether"]
                return [r["item"]["itemId"] for r in found] == ["lamp"]

            await eventually(paired, within=10)
    finally:
        await store.close()


def test_pairs_and_counters_stay_bounded_and_decay():
    online = OnlineState(OnlineLimits(together_size=3, trending_size=5,
                                      trending_half_life_hours=1.0))
    events = [RecordedEvent("u", f"i{k}", 1, k, "view", 1.0, None, 1_000.0 + k)
              for k in range(50)]
    asyncio.run(online.record("t", events))
    partners, _ = asyncio.run(online.together("t", 49, 100))
    assert 0 < len(partners) <= 3 * 1.2  # the most frequent few, not all 49
    top, _ = asyncio.run(online.trending("t", 100))
    assert len(top) <= 5 * 1.2
    # an item bought once an hour later outweighs one bought 1.5 times an hour earlier
    later = [RecordedEvent("v", "a", 2, 1000, "view", 1.5, None, 10_000.0),
             RecordedEvent("v", "b", 2, 1001, "view", 1.0, None, 13_600.0)]
    fresh = OnlineState(OnlineLimits(trending_half_life_hours=1.0))
    asyncio.run(fresh.record("t", later))
    assert asyncio.run(fresh.trending("t", 2))[0].tolist() == [1001, 1000]


async def test_redis_trending_counters_decay_and_survive_a_long_time(store):
    online = store.online
    day = 86_400.0
    events = [RecordedEvent("u", "a", 1, 1, "view", 3.0, None, 1_000.0),
              RecordedEvent("u", "b", 1, 2, "view", 1.0, None, 1_000.0 + 2 * day)]
    await online.record("t", events)
    assert (await online.trending("t", 5))[0].tolist() == [2, 1]  # 1 > 3 · 2⁻²
    # years later (far past where 2^(t/half-life) would overflow a double) counts go on
    late = [RecordedEvent("u", "c", 1, 3, "view", 1.0, None, 1_000.0 + 3000 * day)]
    await online.record("t", late)
    top, weights = await online.trending("t", 5)
    assert top.tolist()[0] == 3 and all(w >= 0 for w in weights.tolist())


async def test_different_events_of_one_item_at_one_moment_all_count(gql, store):
    """A view and a purchase of one item sent in one batch share their timestamp: the kept
    history has both (the weights PostgreSQL has), not one taken for the other."""
    await seed(gql, train=False)
    await store_history(store)  # kept now
    both = """mutation { interactionsRecord(input: {interactions: [
      {userId: "scifi-fan-1", itemId: "scifi-7", type: "view"},
      {userId: "scifi-fan-1", itemId: "scifi-7", type: "purchase"}]}) { recordedCount } }"""
    assert (await gql(both))["interactionsRecord"]["recordedCount"] == 2
    kept, _ = await store.online.history("default", USER)
    fresh = await pg_history(store)
    assert kept is not None
    assert sorted(kept.weights.tolist()) == sorted(fresh.weights.tolist())
