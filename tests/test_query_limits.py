"""Validation results are cached (the limits do not defeat the cache), and the query limits
give clear errors."""

from __future__ import annotations

import re


async def validation_counts(client) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    found = re.findall(r'recograph_cache_total\{cache="validation",result="(\w+)"\} ([\d.]+)', text)
    return {result: float(n) for result, n in found}


async def test_validation_cache_hits_on_repeated_queries(client, gql):
    query = "query Probe { items(first: 3) { nodes { itemId } } }"
    await gql(query)
    before = await validation_counts(client)
    for _ in range(5):
        await gql(query)
    after = await validation_counts(client)
    assert after["hit"] - before.get("hit", 0) == 5
    assert after["miss"] == before["miss"]


async def test_depth_limit(gql, settings):
    deep = "user { interactions { nodes { " * 5
    query = "{ " + deep + "type" + " } } }" * 5 + " }"
    res = await gql(query, expect_errors=True)
    assert "exceeds maximum operation depth" in res["errors"][0]["message"]


async def test_alias_limit(gql, settings):
    aliases = " ".join(f"a{k}: __typename" for k in range(settings.max_aliases + 1))
    res = await gql("{ " + aliases + " }", expect_errors=True)
    assert "aliases" in res["errors"][0]["message"].lower()


async def test_token_limit(gql, settings):
    fields = " ".join("__typename" for _ in range(settings.max_tokens))
    res = await gql("{ " + fields + " }", expect_errors=True)
    assert "token" in res["errors"][0]["message"].lower()
