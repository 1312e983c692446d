"""API keys decide the tenant and what a caller may do; tenants cannot see or touch each
other's data, recommendations or live events."""

from __future__ import annotations

import pytest
from conftest import Caller, subscribers, until_subscribed
from recsys_helpers import RECOMMEND, TRAIN, seed


async def test_requests_without_a_valid_key_are_refused(secured, keys, store):
    for key in (None, "rg_nope_nope"):
        resp = await Caller(secured, key).raw("{ items(first: 1) { nodes { itemId } } }")
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await resp.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    revoked = keys["acme:read"]
    prefix = revoked.split("_")[1]
    assert await store.api_keys.revoke("acme", prefix)
    resp = await Caller(secured, revoked).raw("{ items(first: 1) { nodes { itemId } } }")
    assert resp.status == 401
    page = await secured.get("/graphql", headers={"Accept": "text/html"})
    assert page.status == 200  # the IDE itself needs no key


async def test_tenants_are_isolated(secured, keys):
    acme = Caller(secured, keys["acme:admin"])
    globex = Caller(secured, keys["globex:admin"])
    await seed(acme)
    acme_item = (await acme('{ item(id: "scifi-1") { id title } }'))["item"]
    assert acme_item["title"]

    assert (await globex('{ item(id: "scifi-1") { id } }'))["item"] is None
    assert (await globex("query($id: ID!) { node(id: $id) { id } }",
                         {"id": acme_item["id"]}))["node"] is None
    assert (await globex("{ items(first: 5) { nodes { itemId } } }"))["items"]["nodes"] == []
    assert (await globex('{ user(id: "scifi-fan-1") { userId } }'))["user"] is None
    assert await globex(RECOMMEND, {"u": "scifi-fan-1", "n": 5}) == {"recommendations": []}
    assert (await globex("{ trending(first: 5) { item { itemId } } }"))["trending"] == []

    # globex's item with the same id is its own; acme's is untouched
    await globex('mutation { itemUpsert(input: {item: {id: "scifi-1", title: "Globex"}}) '
                 "{ userErrors { code } } }")
    assert (await acme('{ item(id: "scifi-1") { title } }'))["item"] == {
        "title": acme_item["title"]}
    recs = await acme(RECOMMEND, {"u": "scifi-fan-1", "n": 5})
    assert len(recs["recommendations"]) == 5
    versions = (await globex("{ algorithms { modelVersion } }"))["algorithms"]
    assert {v["modelVersion"] for v in versions} == {None}  # acme's models are acme's


async def subscribe(client, key: str):
    ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"],
                                 headers={"Authorization": f"Bearer {key}"})
    await ws.send_json({"type": "connection_init"})
    assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription { interactionRecorded { userId } }"}})
    return ws


async def next_event(ws, wait: float) -> dict:
    while True:
        msg = await ws.receive_json(timeout=wait)
        if msg["type"] != "ping":
            return msg


async def test_live_events_do_not_cross_tenants(secured, keys, store):
    acme = Caller(secured, keys["acme:admin"])
    await acme('mutation { itemUpsert(input: {item: {id: "i"}}) { userErrors { code } } }')
    listening = {t: subscribers(store, f"events:{t}") for t in ("acme", "globex")}
    own = await subscribe(secured, keys["acme:read"])
    other = await subscribe(secured, keys["globex:read"])
    try:
        for tenant, before in listening.items():
            await until_subscribed(store, f"events:{tenant}", before + 1)
        await acme('mutation { interactionRecord(input: {interaction: {userId: "u", '
                   'itemId: "i", type: "view"}}) { recordedCount } }')
        got = await next_event(own, 5)
        assert got["payload"]["data"]["interactionRecorded"] == {"userId": "u"}
        with pytest.raises(TimeoutError):
            await next_event(other, 1.0)
    finally:
        await own.close()
        await other.close()


@pytest.mark.parametrize(
    ("scope", "allowed", "forbidden"),
    [
        ("recommend", ['{ similarItems(itemId: "x") { rank } }',
                       '{ trending { rank } }', '{ search(text: "x") { score } }'],
         ['{ items { nodes { itemId } } }', '{ user(id: "u") { userId } }',
          '{ recommendations(userId: "u") { rank } }',  # without a user token
          'mutation { itemDelete(input: {id: "x"}) { deletedItemId } }']),
        ("read", ['{ items { nodes { itemId } } }', '{ interactionTypes { name } }'],
         ['mutation { itemDelete(input: {id: "x"}) { deletedItemId } }', "{ apiKeys { name } }"]),
        ("write", ['mutation { itemDelete(input: {id: "x"}) { deletedItemId } }',
                   '{ items { nodes { itemId } } }'],
         ["mutation { modelTrain(input: {}) { models { version } } }",
          'mutation { apiKeyCreate(input: {name: "k", scopes: [READ]}) { secret } }',
          'mutation { interactionTypeUpsert(input: {name: "x", weight: 1}) '
          "{ interactionType { name } } }"]),
    ],
)
async def test_scopes(secured, keys, scope, allowed, forbidden):
    await Caller(secured, keys["acme:admin"])(
        'mutation { itemUpsert(input: {item: {id: "x"}}) { userErrors { code } } }')
    caller = Caller(secured, keys[f"acme:{scope}"])
    for query in allowed:
        await caller(query)  # runs, with no error at all
    for query in forbidden:
        body = await caller(query, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", query
        assert body["data"] is None


async def test_admin_manages_its_own_keys(secured, keys):
    admin = Caller(secured, keys["acme:admin"])
    made = (await admin('mutation { apiKeyCreate(input: {name: "web", scopes: [RECOMMEND]}) '
                        "{ secret apiKey { prefix scopes } userErrors { code } } }")
            )["apiKeyCreate"]
    assert made["apiKey"]["scopes"] == ["recommend"] and made["secret"].startswith("rg_")
    web = Caller(secured, made["secret"])
    assert await web('{ trending { rank } }') == {"trending": []}
    listed = (await admin("{ apiKeys { name prefix } }"))["apiKeys"]
    assert {k["name"] for k in listed} == {"admin", "write", "read", "recommend", "web"}
    other = (await Caller(secured, keys["globex:admin"])("{ apiKeys { prefix } }"))["apiKeys"]
    assert made["apiKey"]["prefix"] not in {k["prefix"] for k in other}
    revoked = await Caller(secured, keys["globex:admin"])(
        "mutation($p: String!) { apiKeyRevoke(input: {prefix: $p}) { userErrors { code } } }",
        {"p": made["apiKey"]["prefix"]})
    assert revoked["apiKeyRevoke"]["userErrors"] == [{"code": "NOT_FOUND"}]
    trained = await admin(TRAIN, {"i": {"algorithms": ["trending"]}})
    assert trained["modelTrain"]["userErrors"] == []
