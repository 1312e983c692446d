"""Live subscriptions: a user's recommendations pushed when their events, a new model or
the catalogue change them (equal to a fresh query each time), new models announced, events
filtered; and fan-out across two server processes sharing Redis."""

from __future__ import annotations

from typing import Any

import aiohttp
from conftest import (
    Caller,
    Socket,
    eventually,
    server_env,
    start_server,
    stop_server,
    subscribers,
    until_ready,
    until_subscribed,
)
from recsys_helpers import TRAIN, seed
from test_cli import free_port

UPDATES = """subscription($u: String!) { recommendationsUpdated(userId: $u, first: 6) {
  causes recommendations { item { itemId } reasons { algorithm } } } }"""
LIST = """query($u: String!) { recommendations(userId: $u, first: 6) { item { itemId } } }"""
RECORD = """mutation($u: String!, $i: String!) { interactionRecord(input: {interaction:
  {userId: $u, itemId: $i, type: "purchase"}}) { recordedCount } }"""
HIDE = """mutation($i: String!) { itemUpsert(input: {item: {id: $i, hidden: true}})
  { userErrors { code } } }"""
MODELS = "subscription { modelTrained { algorithm version items events report } }"
USER = "scifi-fan-1"


def pushed(msg: dict[str, Any]) -> tuple[list[str], list[str]]:
    assert msg["type"] == "next", msg
    update = msg["payload"]["data"]["recommendationsUpdated"]
    return update["causes"], [r["item"]["itemId"] for r in update["recommendations"]]


async def fresh(gql: Any) -> list[str]:
    return [r["item"]["itemId"] for r in (await gql(LIST, {"u": USER}))["recommendations"]]


async def test_the_pushed_list_is_always_what_a_fresh_query_returns(client, gql, store):
    await seed(gql)
    sock = await (await Socket.open(client)).acked()
    listening = subscribers(store, "events:default")
    await sock.subscribe("r", UPDATES, {"u": USER})
    causes, first = pushed(await sock.result("r"))
    assert causes == ["INITIAL"] and first == await fresh(gql) and len(first) == 6
    await until_subscribed(store, "events:default", listening + 1)

    # the user buys their top item: it leaves the list
    await gql(RECORD, {"u": USER, "i": first[0]})
    causes, second = pushed(await sock.result("r"))
    assert causes == ["EVENTS"] and first[0] not in second and second == await fresh(gql)

    # an item of the list is hidden (a catalogue change): it leaves the list
    await gql(HIDE, {"i": second[0]})
    causes, third = pushed(await sock.result("r"))
    assert causes == ["CATALOGUE"] and second[0] not in third and third == await fresh(gql)

    # a burst of five events is answered once, with the list after all of them
    for item in third[:5]:
        await gql(RECORD, {"u": USER, "i": item})
    causes, fourth = pushed(await sock.result("r"))
    assert causes == ["EVENTS"] and not set(third[:5]) & set(fourth)
    assert fourth == await fresh(gql)
    await sock.close()


async def test_new_models_are_announced_and_push_changed_lists(client, gql, store):
    await seed(gql, train=False)
    sock = await (await Socket.open(client)).acked()
    await sock.subscribe("r", UPDATES, {"u": USER})
    _, before = pushed(await sock.result("r"))  # popular items: no model yet
    listening = subscribers(store, "models")
    await sock.subscribe("m", MODELS)
    await until_subscribed(store, "models", listening + 1)
    await gql(TRAIN, {"i": {"algorithms": ["collaborative", "item_knn"]}})
    announced = [(await sock.result("m"))["payload"]["data"]["modelTrained"] for _ in range(2)]
    assert {m["algorithm"] for m in announced} == {"collaborative", "item_knn"}
    assert all(m["version"] >= 1 and m["items"] > 0 and m["events"] > 0 for m in announced)
    collaborative = next(m for m in announced if m["algorithm"] == "collaborative")
    assert "autotune" in collaborative["report"]
    causes, after = pushed(await sock.result("r"))
    assert causes == ["MODEL"] and after == await fresh(gql) and after != before
    await sock.close()


async def test_a_browser_key_follows_only_its_own_user(secured, keys, store):
    admin = Caller(secured, keys["acme:admin"])
    await seed(admin)
    token = (await admin('mutation { userTokenCreate(input: {userId: "scifi-fan-1"}) '
                         '{ token } }'))["userTokenCreate"]["token"]
    login = {"apiKey": keys["acme:recommend"], "userToken": token}
    sock = await (await Socket.open(secured, login)).acked()
    await sock.subscribe("mine", UPDATES, {"u": USER})
    assert pushed(await sock.result("mine"))[0] == ["INITIAL"]
    await sock.subscribe("theirs", UPDATES, {"u": "scifi-fan-2"})
    theirs = await sock.result("theirs")
    assert theirs["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await sock.close()


async def test_event_subscriptions_filter_by_user_item_and_type(client, gql, store):
    await seed(gql, train=False)
    sock = await (await Socket.open(client)).acked()
    listening = subscribers(store, "events:default")
    await sock.subscribe("f", """subscription { interactionRecorded(filter: {itemIds:
      ["scifi-1"], types: ["purchase"]}) { userId itemId type } }""")
    await until_subscribed(store, "events:default", listening + 1)
    await gql(RECORD, {"u": "a", "i": "scifi-2"})  # another item
    await gql("""mutation { interactionRecord(input: {interaction: {userId: "b",
      itemId: "scifi-1", type: "view"}}) { recordedCount } }""")  # another type
    await gql(RECORD, {"u": "c", "i": "scifi-1"})
    msg = await sock.result("f")
    assert msg["payload"]["data"]["interactionRecorded"] == {
        "userId": "c", "itemId": "scifi-1", "type": "purchase"}
    await sock.close()


async def test_a_subscriber_on_one_process_sees_writes_of_another(client, gql, store,
                                                                  database_url):
    """Two server processes on one Redis: subscribe here, write through the other."""
    await seed(gql)
    port = free_port()
    other = start_server(port, server_env(database_url))
    try:
        await until_ready(port, other)
        async with aiohttp.ClientSession() as http:
            sock = await (await Socket.open(client)).acked()
            listening = subscribers(store, "events:default")
            await sock.subscribe("r", UPDATES, {"u": USER})
            _, first = pushed(await sock.result("r"))
            await until_subscribed(store, "events:default", listening + 1)
            async with http.post(f"http://127.0.0.1:{port}/graphql", json={
                    "query": RECORD, "variables": {"u": USER, "i": first[0]}}) as resp:
                assert (await resp.json())["data"]["interactionRecord"]["recordedCount"] == 1
            causes, second = pushed(await sock.result("r", timeout=10))
            assert causes == ["EVENTS"] and first[0] not in second
            assert second == await fresh(gql)
            await sock.close()
    finally:
        stop_server(other)


async def test_a_replica_started_after_training_sees_the_events_since(client, gql, store,
                                                                      settings):
    """Trending learns events online; a replica that loads the trained model later catches
    up on the events stored since its training instead of missing them until the next."""
    from aiohttp.test_utils import TestClient, TestServer
    from conftest import GraphQL

    from gql.server.app import create_app
    from gql.server.database import limits_of
    from storage.store import Store

    trending = "{ trending(first: 60) { item { itemId } } }"
    await seed(gql)
    last = (await gql(trending))["trending"][-1]["item"]["itemId"]
    events = [{"userId": f"fan-{n}", "itemId": last, "type": "purchase"} for n in range(40)]
    await gql("""mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i)
      { recordedCount } }""", {"i": {"interactions": events}})

    async def top_here() -> bool:
        return (await gql(trending))["trending"][0]["item"]["itemId"] == last

    await eventually(top_here)
    other = await Store.open(settings.database_url or "", settings.redis_url,
                             limits=limits_of(settings))
    try:
        async with TestClient(TestServer(create_app(settings, store=other))) as second:
            top = (await GraphQL(second)(trending))["trending"][0]["item"]["itemId"]
            assert top == last
    finally:
        await other.close()


async def test_a_subscriber_whose_feed_lost_messages_is_told_to_come_back(client, gql, store):
    """When pub/sub messages may have been lost (a reconnect), a live list cannot be
    trusted to be current: the socket is closed with 1013 (try again later)."""
    await seed(gql)
    sock = await (await Socket.open(client)).acked()
    listening = subscribers(store, "events:default")
    await sock.subscribe("r", UPDATES, {"u": USER})
    assert pushed(await sock.result("r"))[0] == ["INITIAL"]
    await until_subscribed(store, "events:default", listening + 1)
    store.cache.fanout.lost()
    msg = await sock.result("r", timeout=10)
    assert msg["type"] == "closed" and msg["code"] == 1013
