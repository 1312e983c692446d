"""Pages without repeats: a list asked for with cursors is kept, and ``after`` serves what
follows in that same list, never an item already shown, even after the user acts."""

from __future__ import annotations

from recsys_helpers import seed

PAGE = """query($u: String!, $n: Int!, $after: String) {
  recommendations(userId: $u, first: $n, after: $after) {
    rank recommendationId cursor item { itemId } } }"""
PLAIN = """query($u: String!) { recommendations(userId: $u, first: 5) {
  recommendationId cursor item { itemId } } }"""
RECORD = """mutation($u: String!, $i: String!) { interactionRecord(input: {interaction:
  {userId: $u, itemId: $i, type: "purchase"}}) { recordedCount } }"""
HIDE = """mutation($i: String!) { itemUpsert(input: {item: {id: $i, hidden: true}})
  { userErrors { code } } }"""
USER = "scifi-fan-1"


async def page(gql, after: str | None = None, n: int = 5, user: str = USER) -> list[dict]:
    return (await gql(PAGE, {"u": user, "n": n, "after": after}))["recommendations"]


async def test_pages_follow_one_list_without_repeats(gql):
    await seed(gql)
    first = await page(gql)
    rid = first[0]["recommendationId"]
    assert rid and all(r["recommendationId"] == rid for r in first)
    assert [r["rank"] for r in first] == [1, 2, 3, 4, 5]
    # the user acts on the page: the fresh ranking changes, the list being paged does not
    await gql(RECORD, {"u": USER, "i": first[0]["item"]["itemId"]})
    second = await page(gql, first[-1]["cursor"])
    assert [r["rank"] for r in second] == [6, 7, 8, 9, 10]
    seen = [r["item"]["itemId"] for r in first + second]
    assert len(set(seen)) == len(seen) == 10
    # the same cursor gives the same page; ten pages later the list runs out
    assert await page(gql, first[-1]["cursor"]) == second
    everything = seen
    cursor = second[-1]["cursor"]
    while batch := await page(gql, cursor, n=20):
        everything += [r["item"]["itemId"] for r in batch]
        cursor = batch[-1]["cursor"]
    assert len(everything) == len(set(everything)) and len(everything) >= 30


async def test_an_item_hidden_after_the_first_page_is_not_served_later(gql):
    await seed(gql)
    first = await page(gql)
    ahead = await page(gql, first[-1]["cursor"])
    assert (await gql(HIDE, {"i": ahead[0]["item"]["itemId"]}))["itemUpsert"]["userErrors"] == []
    again = await page(gql, first[-1]["cursor"])
    assert ahead[0]["item"]["itemId"] not in [r["item"]["itemId"] for r in again]


async def test_cursors_are_checked(gql):
    await seed(gql)
    first = await page(gql)
    other = await gql(PAGE, {"u": "romance-fan-1", "n": 5, "after": first[-1]["cursor"]},
                      expect_errors=True)  # another user's list is not theirs to read
    assert other["errors"][0]["extensions"] == {"code": "NOT_FOUND", "field": "after"}
    bad = await gql(PAGE, {"u": USER, "n": 5, "after": "not a cursor"}, expect_errors=True)
    assert bad["errors"][0]["extensions"]["field"] == "after"
    assert "Unexpected" not in bad["errors"][0]["message"]


async def test_lists_are_only_kept_when_cursors_are_asked_for(gql):
    await seed(gql)
    plain = (await gql("""query($u: String!) { recommendations(userId: $u, first: 5)
      { item { itemId } } }""", {"u": USER}))["recommendations"]
    assert len(plain) == 5
    with_ids = (await gql(PLAIN, {"u": USER}))["recommendations"]
    assert [r["item"]["itemId"] for r in with_ids] == [r["item"]["itemId"] for r in plain]
    assert with_ids[0]["recommendationId"] and with_ids[0]["cursor"]


async def test_without_redis_lists_are_kept_in_process_and_bounded():
    from storage.backends import MemoryBackend
    from storage.pages import MEMORY_LISTS, PageStore

    pages = PageStore(MemoryBackend(), ttl=60)
    rid = await pages.put("acme", "u1", b"[[1,0.5,[]]]")
    assert await pages.get("acme", "u1", rid) == b"[[1,0.5,[]]]"
    assert await pages.get("globex", "u1", rid) is None  # another tenant's list
    assert await pages.get("acme", "u2", rid) is None
    assert pages._local.maxsize == MEMORY_LISTS


async def test_paging_one_by_one_past_a_hidden_item_repeats_nothing(gql):
    await seed(gql)
    first = await page(gql, n=1)
    ahead = await page(gql, first[-1]["cursor"], n=3)
    await gql(HIDE, {"i": ahead[0]["item"]["itemId"]})  # skipped from now on
    shown = [first[0]["item"]["itemId"]]
    cursor = first[-1]["cursor"]
    for _ in range(6):
        [item] = await page(gql, cursor, n=1)
        shown.append(item["item"]["itemId"])
        cursor = item["cursor"]
    assert len(shown) == len(set(shown)) and ahead[0]["item"]["itemId"] not in shown


async def test_a_tenant_keeps_a_bounded_number_of_lists_in_redis(store, monkeypatch):
    import storage.pages as pages_module
    from storage.pages import PageStore

    monkeypatch.setattr(pages_module, "TENANT_LISTS", 3)
    pages = PageStore(store.cache, ttl=60)
    kept = [await pages.put("acme", f"u{n}", b"[]") for n in range(5)]
    found = [await pages.get("acme", f"u{n}", rid) for n, rid in enumerate(kept)]
    assert found[:2] == [None, None] and found[2:] == [b"[]"] * 3  # the oldest went first
