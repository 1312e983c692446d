"""Cross-origin calls (CORS): a web page may call the API only from an origin its key (or
the service's setting) allows; other pages get no CORS headers and no effect."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from conftest import Caller, Socket, eventually, subscribers, until_subscribed

from gql.server.app import create_app

SHOP = "https://shop.example"
EVIL = "https://evil.example"
CREATE = """mutation($o: [String!]!) { apiKeyCreate(input: {name: "web", scopes: [RECOMMEND],
  allowedOrigins: $o}) { secret apiKey { prefix allowedOrigins }
  userErrors { field message code } } }"""
UPDATE = """mutation($p: String!, $o: [String!]!) { apiKeyUpdate(input: {prefix: $p,
  allowedOrigins: $o}) { apiKey { allowedOrigins } userErrors { field message code } } }"""
MINT = """mutation($u: String!) { userTokenCreate(input: {userId: $u}) { token } }"""
ITEM = 'mutation { itemUpsert(input: {item: {id: "i1"}}) { userErrors { code } } }'
RECORD = """mutation($u: String!) { interactionRecord(input: {interaction: {userId: $u,
  itemId: "i1", type: "view"}}) { recordedCount userErrors { code } } }"""


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-user-token",
    }


async def web_key(admin: Caller, origins: list[str]) -> tuple[str, str]:
    out = (await admin(CREATE, {"o": origins}))["apiKeyCreate"]
    assert out["userErrors"] == []
    return out["secret"], out["apiKey"]["prefix"]


async def test_a_key_works_from_its_origins_and_no_other(secured, keys):
    admin = Caller(secured, keys["acme:admin"])
    secret, _ = await web_key(admin, ["https://SHOP.example:443/"])  # stored as browsers send it
    resp = await secured.options("/graphql", headers=preflight(SHOP))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == SHOP
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-user-token"} <= allowed
    assert "Access-Control-Allow-Credentials" not in resp.headers

    page = Caller(secured, secret, {"Origin": SHOP})
    resp = await page.raw("{ trending(first: 3) { rank } }")
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in resp.headers["Vary"]

    # a page of another origin: the preflight fails, and so would the request itself
    resp = await secured.options("/graphql", headers=preflight(EVIL))
    assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
    resp = await Caller(secured, secret, {"Origin": EVIL}).raw("{ trending(first: 3) { rank } }")
    assert resp.status == 403
    assert (await resp.json())["errors"][0]["extensions"]["code"] == "FORBIDDEN_ORIGIN"
    assert "Access-Control-Allow-Origin" not in resp.headers

    # the allowed origin with a key that does not allow it: refused, readably
    resp = await Caller(secured, keys["acme:read"], {"Origin": SHOP}).raw("{ __typename }")
    assert resp.status == 403
    assert "allowedOrigins" in (await resp.json())["errors"][0]["message"]


async def test_a_refused_page_changes_nothing(secured, keys, store):
    await Caller(secured, keys["acme:write"])(ITEM)
    writer = Caller(secured, keys["acme:write"], {"Origin": EVIL})
    resp = await writer.raw(RECORD, {"u": "u1"})
    assert resp.status == 403
    reader = Caller(secured, keys["acme:read"])
    assert (await reader('{ user(id: "u1") { userId } }'))["user"] is None
    # servers send no Origin: the same key works from the backend
    recorded = await Caller(secured, keys["acme:write"])(RECORD, {"u": "u1"})
    assert recorded["interactionRecord"]["recordedCount"] == 1
    assert (await reader('{ user(id: "u1") { userId } }'))["user"] == {"userId": "u1"}


async def test_pages_of_the_service_itself_are_not_cross_origin(secured, keys):
    own = f"http://{secured.host}:{secured.port}"
    resp = await Caller(secured, keys["acme:read"], {"Origin": own}).raw("{ __typename }")
    assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers


async def test_changing_a_keys_origins_takes_effect_at_once(secured, keys):
    admin = Caller(secured, keys["acme:admin"])
    secret, prefix = await web_key(admin, [SHOP])
    page = Caller(secured, secret, {"Origin": SHOP})
    assert (await page.raw("{ __typename }")).status == 200  # now cached
    out = (await admin(UPDATE, {"p": prefix, "o": ["https://new.example"]}))["apiKeyUpdate"]
    assert out == {"apiKey": {"allowedOrigins": ["https://new.example"]}, "userErrors": []}

    async def refused() -> bool:
        return (await page.raw("{ __typename }")).status == 403

    await eventually(refused)
    moved = Caller(secured, secret, {"Origin": "https://new.example"})
    assert (await moved.raw("{ __typename }")).status == 200


async def test_bad_origins_are_named(secured, keys):
    admin = Caller(secured, keys["acme:admin"])
    bad = [SHOP, "shop.example", "https://shop.example/path", "null", "ftp://x.example"]
    out = (await admin(CREATE, {"o": bad}))["apiKeyCreate"]
    assert out["secret"] is None
    assert [e["field"] for e in out["userErrors"]] == [
        ["input", "allowedOrigins", str(i)] for i in range(1, 5)
    ]
    out = (await admin(UPDATE, {"p": "nope", "o": []}))["apiKeyUpdate"]
    assert out["userErrors"][0]["code"] == "NOT_FOUND"
    # only admins manage keys
    body = await Caller(secured, keys["acme:write"])(UPDATE, {"p": "x", "o": []},
                                                     expect_errors=True)
    assert "admin" in body["errors"][0]["message"]


async def test_the_setting_allows_origins_for_every_key(store, settings, keys):
    app = create_app(settings.model_copy(update={"require_api_key": True,
                                                 "cors_origins": "*"}), store=store)
    async with TestClient(TestServer(app)) as client:
        resp = await client.options("/graphql", headers=preflight(EVIL))
        assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == EVIL
        assert "Access-Control-Allow-Credentials" not in resp.headers
        resp = await Caller(client, keys["acme:read"], {"Origin": EVIL}).raw("{ __typename }")
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == EVIL


async def test_sockets_check_the_page_origin(secured, keys, store):
    admin = Caller(secured, keys["acme:admin"])
    secret, _ = await web_key(admin, [SHOP])
    token = (await Caller(secured, keys["acme:write"])(MINT, {"u": "u1"}))["userTokenCreate"][
        "token"]
    login = {"Authorization": f"Bearer {secret}", "userToken": token}

    refused = await Socket.open(secured, login, headers={"Origin": EVIL})
    msg = await refused.message()
    assert msg["type"] == "closed" and msg["code"] == 4403

    page = await (await Socket.open(secured, login, headers={"Origin": SHOP})).acked()
    listening = subscribers(store, "events:acme")
    # a browser key may follow its own user's events, to refresh their recommendations
    await page.subscribe("mine", "subscription { interactionRecorded(userId: \"u1\") { itemId } }")
    await page.subscribe("theirs", "subscription { interactionRecorded(userId: \"u2\") "
                                   "{ itemId } }")
    theirs = await page.result("theirs")
    assert theirs["type"] == "next" and theirs["payload"]["data"] is None
    assert theirs["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await until_subscribed(store, "events:acme", listening + 1)
    writer = Caller(secured, keys["acme:write"])
    await writer(ITEM)
    for user in ("u2", "u1"):
        await writer(RECORD, {"u": user})
    mine: dict[str, Any] = await page.result("mine")
    assert mine["type"] == "next"
    assert mine["payload"]["data"]["interactionRecorded"] == {"itemId": "i1"}
    await page.close()


async def test_a_socket_closes_when_its_user_token_expires(secured, keys, store):
    from gql.server.auth import mint_user_token

    admin = Caller(secured, keys["acme:admin"])
    secret, _ = await web_key(admin, [SHOP])
    token, _ = mint_user_token(await store.tenant_secret("acme"), "u1", 2)
    page = await (await Socket.open(secured, {"apiKey": secret, "userToken": token},
                                    headers={"Origin": SHOP})).acked()
    await page.subscribe("mine", 'subscription { interactionRecorded(userId: "u1") '
                                 '{ itemId } }')
    msg = await page.result("mine", timeout=10)
    assert msg["type"] == "closed" and msg["code"] == 4403


async def test_removing_an_origin_closes_the_sockets_opened_from_it(secured, keys, store):
    admin = Caller(secured, keys["acme:admin"])
    secret, prefix = await web_key(admin, [SHOP, "https://new.example"])
    token = (await Caller(secured, keys["acme:write"])(MINT, {"u": "u1"}))["userTokenCreate"][
        "token"]
    login = {"apiKey": secret, "userToken": token}
    old = await (await Socket.open(secured, login, headers={"Origin": SHOP})).acked()
    kept = await (await Socket.open(secured, login,
                                    headers={"Origin": "https://new.example"})).acked()
    await admin(UPDATE, {"p": prefix, "o": ["https://new.example"]})
    msg = await old.message(timeout=10)
    assert msg["type"] == "closed" and msg["code"] == 4403
    listening = subscribers(store, "events:acme")
    await kept.subscribe("1", 'subscription { interactionRecorded(userId: "u1") { itemId } }')
    await until_subscribed(store, "events:acme", listening + 1)
    writer = Caller(secured, keys["acme:write"])
    await writer(ITEM)
    await writer(RECORD, {"u": "u1"})
    assert (await kept.result("1"))["type"] == "next"  # the allowed page's socket lives on
    await kept.close()
