"""Every operation on every transport is authenticated and authorised alike: the GraphiQL
page runs nothing, sockets log in at connection_init, and each operation on a socket is
checked again (revoked keys, scopes, rate limits)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from conftest import Caller, Socket, subscribers, until_subscribed

from gql.server.app import create_app

MINT_ADMIN = 'mutation { apiKeyCreate(input: {name: "x", scopes: [ADMIN]}) { secret } }'
EVENTS = "subscription { interactionRecorded { userId itemId } }"
RECORD = ('mutation { interactionRecord(input: {interaction: {userId: "u", itemId: "i", '
          'type: "view"}}) { recordedCount } }')


async def test_a_socket_that_looks_like_the_ide_page_gets_nothing(secured, keys, store):
    """The critical hole: `Accept: text/html` on a WebSocket upgrade used to be treated as
    the GraphiQL page and handed every scope of the default tenant."""
    sock = await Socket.open(secured, headers={"Accept": "text/html"})
    msg = await sock.message()
    assert msg == {"type": "closed", "code": 4403, "reason": "Forbidden"}
    sock = await Socket.open(secured, headers={"Accept": "text/html"})
    await sock.subscribe("1", MINT_ADMIN)  # before any ack: refused, nothing runs
    assert (await sock.message())["type"] == "closed"
    assert [k.name for k in await store.api_keys.list("default")] == []
    # the page itself still loads, and running a query from it needs a key
    page = await secured.get("/graphql", headers={"Accept": "text/html"})
    assert page.status == 200 and "graphiql" in (await page.text()).lower()
    query = await secured.get("/graphql", params={"query": "{ __typename }"},
                              headers={"Accept": "text/html"})
    assert query.status == 401


async def test_a_key_in_connection_init_logs_the_socket_in(secured, keys):
    """Browsers cannot set headers on a WebSocket: the key may come in the payload."""
    sock = await (await Socket.open(secured, {"Authorization": f"Bearer {keys['acme:read']}"})
                  ).acked()
    await sock.subscribe("1", "query { interactionTypes { name } }")
    msg = await sock.message()
    assert msg["type"] == "next" and msg["payload"]["data"]["interactionTypes"]
    await sock.close()
    sock = await (await Socket.open(secured, {"apiKey": keys["globex:read"]})).acked()
    await sock.close()


async def test_a_bad_key_is_refused_with_a_close_code_not_http_bytes(secured, keys):
    for payload, headers in (({"apiKey": "rg_nope_nope"}, {}), ({}, {}),
                             ({}, {"Authorization": "Bearer rg_forged_key"})):
        sock = await Socket.open(secured, payload, headers)
        msg = await sock.message()
        assert msg["type"] == "closed" and msg["code"] == 4403, (payload, headers, msg)


async def test_scopes_hold_on_sockets_as_on_http(secured, keys):
    """A browser-safe recommend key may not stream every user's events over a socket (only
    its own user's, with a user token: tests/test_cors.py)."""
    recommend = keys["acme:recommend"]
    sock = await (await Socket.open(secured, {"apiKey": recommend})).acked()
    await sock.subscribe("1", EVENTS)
    msg = await sock.message()
    assert msg["type"] == "next" and msg["payload"]["data"] is None, msg
    assert msg["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await sock.subscribe("2", MINT_ADMIN)
    msg = await sock.result("2")
    assert msg["type"] == "error" and msg["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    await sock.close()


async def test_a_revoked_key_stops_working_on_an_open_socket(secured, keys, store):
    admin = Caller(secured, keys["acme:admin"])
    await admin('mutation { itemUpsert(input: {item: {id: "i"}}) { userErrors { code } } }')
    made = (await admin('mutation { apiKeyCreate(input: {name: "live", scopes: [READ]}) '
                        "{ secret apiKey { prefix } } }"))["apiKeyCreate"]
    sock = await (await Socket.open(secured, {"apiKey": made["secret"]})).acked()
    listening = subscribers(store, "events:acme")
    await sock.subscribe("1", EVENTS)
    await until_subscribed(store, "events:acme", listening + 1)
    await admin(RECORD)
    assert (await sock.message())["type"] == "next"
    await admin("mutation($p: String!) { apiKeyRevoke(input: {prefix: $p}) { revokedPrefix } }",
                {"p": made["apiKey"]["prefix"]})
    msg = await sock.message()
    assert msg["type"] == "closed" and msg["code"] == 4403, msg
    again = await Socket.open(secured, {"apiKey": made["secret"]})
    assert (await again.message())["code"] == 4403


async def test_operations_on_a_socket_are_rate_limited(store, settings, keys):
    tight = settings.model_copy(update={"require_api_key": True, "rate_limit_per_key": 2.0,
                                        "rate_limit_burst_seconds": 2.0})
    async with TestClient(TestServer(create_app(tight, store=store))) as client:
        sock = await (await Socket.open(client, {"apiKey": keys["acme:read"]})).acked()
        for n in range(12):
            await sock.subscribe(str(n), "{ __typename }")
        outcomes = []
        while len(outcomes) < 12:
            msg = await sock.message()
            if msg["type"] == "next":
                outcomes.append("ok")
            elif msg["type"] == "error":
                outcomes.append(msg["payload"][0]["extensions"]["code"])
                assert msg["payload"][0]["extensions"]["retryAfter"] >= 1
        assert outcomes.count("ok") <= 5 and "RATE_LIMITED" in outcomes
        await sock.close()


async def test_operations_per_socket_are_capped(secured, keys):
    sock = await (await Socket.open(secured, {"apiKey": keys["acme:read"]})).acked()
    for n in range(21):
        await sock.subscribe(str(n), EVENTS)
    msg = await sock.message()
    assert msg["type"] == "error" and msg["id"] == "20"
    assert "limit" in msg["payload"][0]["message"].lower()
    await sock.close()


async def test_malformed_socket_messages_close_with_4400_and_a_reason(secured, keys):
    """Whatever a client sends on a socket, the answer is a protocol close naming what is
    wrong, never a server error."""
    bad = [
        [1, 2, 3],
        "just a string",
        {"type": 5},
        {"type": "subscribe", "id": 7, "payload": {"query": "{ __typename }"}},
        {"type": "subscribe", "id": "1", "payload": "{ __typename }"},
        {"type": "subscribe", "id": "1", "payload": {"query": None}},
        {"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }", "variables": []}},
        {"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }",
                                                     "operationName": {"x": 1}}},
        {"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }" * 10_000}},
    ]
    for message in bad:
        sock = await (await Socket.open(secured, {"apiKey": keys["acme:read"]})).acked()
        await sock.ws.send_json(message)
        msg = await sock.message()
        assert msg["type"] == "closed" and msg["code"] == 4400, (message, msg)
    sock = await (await Socket.open(secured, {"apiKey": keys["acme:read"]})).acked()
    await sock.subscribe("ok", "{ __typename }")
    assert (await sock.result("ok"))["payload"]["data"] == {"__typename": "Query"}
    await sock.close()


async def test_each_user_of_a_browser_key_has_its_own_share_of_operations(store, settings,
                                                                         keys):
    """A browser key is shared by every visitor of a site: one visitor holding the key's
    whole allowance of open operations must not lock the others out."""
    app = create_app(settings.model_copy(update={"require_api_key": True,
                                                 "max_subscriptions_per_key": 2}),
                     store=store)
    async with TestClient(TestServer(app)) as client:
        writer = Caller(client, keys["acme:write"])
        mint = 'mutation($u: String!) { userTokenCreate(input: {userId: $u}) { token } }'
        tokens = {u: (await writer(mint, {"u": u}))["userTokenCreate"]["token"]
                  for u in ("greedy", "other")}

        def follow(user: str) -> str:
            return f'subscription {{ interactionRecorded(userId: "{user}") {{ itemId }} }}'

        greedy = await (await Socket.open(client, {"apiKey": keys["acme:recommend"],
                                                   "userToken": tokens["greedy"]})).acked()
        listening = subscribers(store, "events:acme")
        for n in range(2):
            await greedy.subscribe(str(n), follow("greedy"))
        await until_subscribed(store, "events:acme", listening + 2)
        await greedy.subscribe("3", follow("greedy"))
        refused = await greedy.result("3")
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY"
        other = await (await Socket.open(client, {"apiKey": keys["acme:recommend"],
                                                  "userToken": tokens["other"]})).acked()
        await other.subscribe("1", follow("other"))
        await until_subscribed(store, "events:acme", listening + 3)
        await greedy.close()
        await other.close()
