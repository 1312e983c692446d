"""Parse and validation results are cached (the limiters do not defeat the cache), and the
query limits give clear errors."""

from __future__ import annotations

from strawberry.extensions.validation_cache import _get_validate_cache


async def test_validation_cache_hits_on_repeated_queries(gql):
    cache = _get_validate_cache(512)
    query = "query Probe { items(first: 3) { nodes { itemId } } }"
    await gql(query)
    before = cache.cache_info()
    for _ in range(5):
        await gql(query)
    after = cache.cache_info()
    assert after.hits - before.hits == 5
    assert after.misses == before.misses


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
