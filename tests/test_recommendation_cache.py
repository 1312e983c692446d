"""The recommendation cache: a repeated request is answered without recomputing, and an
event of the user, a catalogue change or a new model changes the very next answer, on
every replica, with Redis or without it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from conftest import GraphQL, eventually, reset
from recsys_helpers import TRAIN, seed

from gql.server.app import create_app
from gql.server.database import limits_of
from storage.store import Store

LIST = """query($u: String!) { recommendations(userId: $u, first: 8) { item { itemId } } }"""
RECORD = """mutation($u: String!, $i: String!) { interactionRecord(input: {interaction:
  {userId: $u, itemId: $i, type: "purchase"}}) { recordedCount } }"""
HIDE = """mutation($i: String!) { itemUpsert(input: {item: {id: $i, hidden: true}})
  { userErrors { code } } }"""
USER = "scifi-fan-1"


async def ids(gql: GraphQL, user: str = USER) -> list[str]:
    return [r["item"]["itemId"] for r in (await gql(LIST, {"u": user}))["recommendations"]]


def history_reads(sql_counter: Any) -> int:
    return sum("interactions" in s for s in sql_counter.selects)


async def until_cached(gql: GraphQL, sql_counter: Any) -> list[str]:
    """Ask until an answer comes from the cache (with Redis a replica stores answers only
    once it has known the catalogue's version for a moment)."""
    answer: list[str] = []

    async def cached() -> bool:
        nonlocal answer
        before = history_reads(sql_counter)
        answer = await ids(gql)
        return history_reads(sql_counter) == before

    await eventually(cached, within=10)
    return answer


async def test_a_repeated_request_is_served_from_the_cache(gql, sql_counter, store):
    await seed(gql)
    first = await ids(gql)
    assert await until_cached(gql, sql_counter) == first


async def test_an_event_of_the_user_changes_the_next_answer(gql, sql_counter, store):
    await seed(gql)
    first = await until_cached(gql, sql_counter)
    # another user's event leaves this user's answer cached
    await gql(RECORD, {"u": "romance-fan-1", "i": first[1]})
    before = history_reads(sql_counter)
    assert await ids(gql) == first and history_reads(sql_counter) == before
    await gql(RECORD, {"u": USER, "i": first[0]})
    after = await ids(gql)
    assert first[0] not in after  # seen now: not recommended again


async def test_a_hidden_item_leaves_the_next_answer(gql, sql_counter, store):
    await seed(gql)
    first = await until_cached(gql, sql_counter)
    assert (await gql(HIDE, {"i": first[0]}))["itemUpsert"]["userErrors"] == []
    assert first[0] not in await ids(gql)


async def test_a_new_model_is_used_at_once(gql, sql_counter, store):
    await seed(gql)
    await until_cached(gql, sql_counter)
    assert (await gql(TRAIN, {"i": {}}))["modelTrain"]["userErrors"] == []
    before = history_reads(sql_counter)
    await ids(gql)
    assert history_reads(sql_counter) > before  # computed with the new versions


async def test_replicas_share_answers_and_their_invalidation(store, settings, gql,
                                                            sql_counter):
    """Two replicas on one Redis: an event written through one changes what the other
    answers next."""
    await seed(gql)
    other = await Store.open(settings.database_url or "", settings.redis_url,
                             limits=limits_of(settings),
                             result_cache_seconds=settings.recommendation_cache_seconds)
    try:
        app = create_app(settings, store=other)
        async with TestClient(TestServer(app)) as client:
            replica = GraphQL(client)
            await replica(TRAIN, {"i": {}})  # both replicas hold models of the same data
            first = await until_cached(gql, sql_counter)
            await replica(RECORD, {"u": USER, "i": first[0]})
            assert first[0] not in await ids(gql)
    finally:
        await other.close()


async def test_without_redis_each_process_keeps_its_own_honest_copy(settings, database_url):
    store = await Store.open(database_url, None, limits=limits_of(settings),
                             result_cache_seconds=60)
    try:
        await reset(store)
        async with TestClient(TestServer(create_app(settings, store=store))) as client:
            gql = GraphQL(client)
            await seed(gql)
            first = await ids(gql)
            assert await ids(gql) == first
            await gql(RECORD, {"u": USER, "i": first[0]})
            assert first[0] not in await ids(gql)
            await gql(HIDE, {"i": first[1]})
            assert first[1] not in await ids(gql)
    finally:
        await store.close()


def response_hits(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('recograph_cache_total{cache="responses",result="hit"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_repeated_query_is_answered_without_running_it(client, gql, sql_counter,
                                                               store):
    """The whole response of a repeated recommendations query comes from the cache, and
    stops doing so the moment its user acts or the catalogue changes."""
    await seed(gql)
    first = await until_cached(gql, sql_counter)

    async def hits() -> float:
        return response_hits(await (await client.get("/metrics")).text())

    before = await hits()
    assert await ids(gql) == first
    assert await hits() == before + 1
    await gql(RECORD, {"u": USER, "i": first[0]})
    assert first[0] not in await ids(gql)
    second = await ids(gql)
    await gql(HIDE, {"i": second[0]})
    assert second[0] not in await ids(gql)


async def test_a_cached_response_is_never_given_to_another_caller(secured, keys, store):
    """A list cached for a read key is not what a browser key gets for another user."""
    from conftest import Caller

    reader = Caller(secured, keys["acme:read"])
    await seed(Caller(secured, keys["acme:admin"]))
    for _ in range(3):
        assert len((await reader(LIST, {"u": USER}))["recommendations"]) == 8
    token = (await Caller(secured, keys["acme:write"])(
        'mutation { userTokenCreate(input: {userId: "someone-else"}) { token } }'
    ))["userTokenCreate"]["token"]
    page = Caller(secured, keys["acme:recommend"], {"X-User-Token": token})
    body = await page(LIST, {"u": USER}, expect_errors=True)
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_variables_a_query_does_not_declare_make_no_entries(client, gql, sql_counter,
                                                                  store):
    await seed(gql)
    await until_cached(gql, sql_counter)
    for n in range(3):
        body = {"query": LIST, "variables": {"u": USER, "junk": f"x{n}"}}
        assert (await client.post("/graphql", json=body)).status == 200
    text = await (await client.get("/metrics")).text()
    before = response_hits(text)
    for n in range(3):  # the same junk again: still computed, never stored
        body = {"query": LIST, "variables": {"u": USER, "junk": f"x{n}"}}
        assert (await client.post("/graphql", json=body)).status == 200
    assert response_hits(await (await client.get("/metrics")).text()) == before
