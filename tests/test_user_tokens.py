"""A browser-safe ``recommend`` key only gets recommendations for the user its signed user
token names, so a key taken from a web page cannot rebuild other users' histories."""

from __future__ import annotations

import time

import jwt
import pytest
from conftest import Caller, Socket
from recsys_helpers import RECOMMEND, seed

from gql.server.auth import Authenticator, Unauthorized

MINT = """mutation($u: String!, $ttl: Int! = 600) { userTokenCreate(input: {userId: $u,
  ttlSeconds: $ttl}) { token expiresAt userErrors { field code } } }"""
WHY = """query($u: String!) { recommendations(userId: $u, first: 5) {
  item { itemId } reasons { becauseItem { itemId } } } }"""


async def test_recommend_keys_need_a_token_for_the_very_user(secured, keys, store):
    backend = Caller(secured, keys["acme:write"])
    await seed(Caller(secured, keys["acme:admin"]))
    minted = (await backend(MINT, {"u": "scifi-fan-1"}))["userTokenCreate"]
    assert minted["userErrors"] == [] and minted["expiresAt"]
    page = Caller(secured, keys["acme:recommend"], {"X-User-Token": minted["token"]})
    recs = (await page(WHY, {"u": "scifi-fan-1"}))["recommendations"]
    assert len(recs) == 5
    # another user's history cannot be probed: neither their list nor its reasons
    for user in ("scifi-fan-2", "romance-fan-1"):
        body = await page(WHY, {"u": user}, expect_errors=True)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert body["data"] is None
    bare = Caller(secured, keys["acme:recommend"])
    body = await bare(RECOMMEND, {"u": "scifi-fan-1", "n": 3, "seen": False}, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # item-level calls need no user
    assert (await bare('{ trending(first: 2) { rank } }'))["trending"]


async def test_forged_expired_and_foreign_tokens_are_refused(secured, keys, store):
    secret = await store.tenant_secret("acme")
    now = int(time.time())
    expired = jwt.encode({"sub": "u", "exp": now - 10, "aud": "recograph"}, secret, "HS256")
    forged = jwt.encode({"sub": "u", "exp": now + 600, "aud": "recograph"}, "g" * 64, "HS256")
    other_tenant = (await Caller(secured, keys["globex:write"])(MINT, {"u": "u"}))[
        "userTokenCreate"]["token"]
    for token in (expired, forged, other_tenant, "not-a-token", "a.b.c"):
        resp = await Caller(secured, keys["acme:recommend"], {"X-User-Token": token}).raw(
            WHY, {"u": "u"})
        assert resp.status == 401, token
        assert (await resp.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_rotating_the_secret_invalidates_tokens(secured, keys, store):
    token = (await Caller(secured, keys["acme:write"])(MINT, {"u": "u"}))["userTokenCreate"][
        "token"]
    await store.rotate_tenant_secret("acme")
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "u"
    fresh = Authenticator(store, required=True)  # a replica that has not cached the secret
    with pytest.raises(Unauthorized, match="invalid user token"):
        await fresh.authenticate(f"Bearer {keys['acme:recommend']}", token, "127.0.0.1")


async def test_tokens_work_on_sockets_and_bad_ttls_are_user_errors(secured, keys):
    backend = Caller(secured, keys["acme:write"])
    bad = (await backend(MINT, {"u": "u", "ttl": 5}))["userTokenCreate"]
    assert bad["token"] is None and bad["userErrors"] == [
        {"field": ["input", "ttlSeconds"], "code": "INVALID"}]
    token = (await backend(MINT, {"u": "u"}))["userTokenCreate"]["token"]
    sock = await (await Socket.open(secured, {"apiKey": keys["acme:recommend"],
                                              "userToken": token})).acked()
    await sock.subscribe("1", 'query { recommendations(userId: "u") { rank } }')
    assert (await sock.result("1"))["type"] == "next"
    await sock.subscribe("2", 'query { recommendations(userId: "v") { rank } }')
    msg = await sock.result("2")
    assert msg["type"] == "next" and msg["payload"]["errors"][0]["extensions"]["code"] == (
        "FORBIDDEN")
    await sock.close()


async def test_a_browser_key_cannot_learn_that_a_hidden_item_exists(secured, keys):
    admin = Caller(secured, keys["acme:admin"])
    await seed(admin)
    await admin('mutation { itemUpsert(input: {item: {id: "scifi-1", hidden: true}}) '
                "{ userErrors { code } } }")
    similar = '{ similarItems(itemId: "scifi-1", first: 3) { item { itemId } } }'
    bare = Caller(secured, keys["acme:recommend"])
    hidden = await bare(similar, expect_errors=True)
    missing = await bare(similar.replace("scifi-1", "no-such-item"), expect_errors=True)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert hidden["errors"][0]["message"].replace("scifi-1", "x") == missing["errors"][0][
        "message"].replace("no-such-item", "x")
    # the back end (a read key) may still ask about it
    assert (await Caller(secured, keys["acme:read"])(similar))["similarItems"] is not None
