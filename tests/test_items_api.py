"""Items through the GraphQL API: upsert semantics, lookups, keyset pages, filters, delete."""

from __future__ import annotations

import numpy as np

UPSERT = """mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) {
  created item { id itemId entityType title text categories tags attributes hidden }
  userErrors { field message code } } }"""
BULK = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount createdCount userErrors { field message code } } }"""
PAGE = """query($first: Int!, $after: String, $f: ItemFilterInput) {
  items(first: $first, after: $after, filter: $f) {
    edges { cursor node { itemId } } nodes { itemId }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""


async def test_upsert_creates_then_updates_only_sent_fields(gql):
    first = await gql(
        UPSERT,
        {
            "i": {
                "item": {
                    "id": "m1",
                    "title": "Heat",
                    "categories": ["Crime", "Drama"],
                    "attributes": {"year": 1995, "price": 9.5},
                    "entityType": "movie",
                }
            }
        },
    )
    payload = first["itemUpsert"]
    assert payload["userErrors"] == []
    assert payload["created"] is True
    assert payload["item"]["categories"] == ["Crime", "Drama"]

    second = await gql(UPSERT, {"i": {"item": {"id": "m1", "text": "Cops and robbers"}}})
    item = second["itemUpsert"]["item"]
    assert second["itemUpsert"]["created"] is False
    assert item["title"] == "Heat"  # not sent: kept
    assert item["text"] == "Cops and robbers"
    assert item["entityType"] == "movie"
    assert item["attributes"] == {"year": 1995, "price": 9.5}

    cleared = await gql(UPSERT, {"i": {"item": {"id": "m1", "title": None}}})
    assert cleared["itemUpsert"]["item"]["title"] is None


async def test_item_by_own_id_by_global_id_and_node(gql):
    created = await gql(UPSERT, {"i": {"item": {"id": "sku-42", "title": "Kettle"}}})
    global_id = created["itemUpsert"]["item"]["id"]
    assert global_id != "sku-42"
    by_own = await gql('query { item(id: "sku-42") { id title } }')
    by_global = await gql("query($id: ID!) { item(id: $id) { id title } }", {"id": global_id})
    node = await gql(
        "query($id: ID!) { node(id: $id) { id ... on Item { itemId } } }", {"id": global_id}
    )
    assert by_own["item"] == by_global["item"] == {"id": global_id, "title": "Kettle"}
    assert node["node"] == {"id": global_id, "itemId": "sku-42"}
    missing = await gql('query { item(id: "nope") { id } node(id: "bm9wZQ==") { id } }')
    assert missing == {"item": None, "node": None}


async def test_items_connection_walks_every_item_once_with_keyset_cursors(gql):
    items = [{"id": f"i{n:03}", "categories": ["even" if n % 2 == 0 else "odd"]} for n in range(25)]
    await gql(BULK, {"i": {"items": items}})
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = (await gql(PAGE, {"first": 10, "after": after}))["items"]
        pages += 1
        assert [e["node"]["itemId"] for e in data["edges"]] == [n["itemId"] for n in data["nodes"]]
        seen += [n["itemId"] for n in data["nodes"]]
        assert data["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == [i["id"] for i in items]

    odd = (await gql(PAGE, {"first": 100, "f": {"categories": ["odd"]}}))["items"]["nodes"]
    assert [n["itemId"] for n in odd] == [f"i{n:03}" for n in range(1, 25, 2)]


async def test_page_size_and_cursor_errors_are_typed(gql, settings):
    too_big = await gql(PAGE, {"first": settings.max_page_size + 1}, expect_errors=True)
    err = too_big["errors"][0]
    assert err["extensions"]["code"] == "PAGE_SIZE_EXCEEDED"
    assert err["extensions"]["field"] == "first"
    bad_cursor = await gql(PAGE, {"first": 5, "after": "garbage!"}, expect_errors=True)
    assert bad_cursor["errors"][0]["extensions"]["field"] == "after"
    assert "cursor" in bad_cursor["errors"][0]["message"]


async def test_delete_item(gql):
    await gql(UPSERT, {"i": {"item": {"id": "gone"}}})
    deleted = await gql(
        'mutation { itemDelete(input: {id: "gone"}) { deletedItemId userErrors { field code } } }'
    )
    assert deleted["itemDelete"] == {"deletedItemId": "gone", "userErrors": []}
    again = await gql(
        'mutation { itemDelete(input: {id: "gone"}) { deletedItemId userErrors { field code } } }'
    )
    assert again["itemDelete"]["userErrors"] == [{"field": ["input", "id"], "code": "NOT_FOUND"}]
    assert (await gql('{ item(id: "gone") { id } }'))["item"] is None


async def test_client_embeddings_are_stored_and_dimension_checked(gql, store):
    ok = await gql(UPSERT, {"i": {"item": {"id": "v1", "embedding": [1.0, 0.0, 0.5]}}})
    assert ok["itemUpsert"]["userErrors"] == []
    await gql(UPSERT, {"i": {"item": {"id": "v2", "embedding": [0.9, 0.1, 0.5]}}})
    await gql(UPSERT, {"i": {"item": {"id": "v3", "embedding": [-1.0, 0.0, 0.0]}}})
    pks = await store.items.pks("default", ["v1", "v2", "v3"])
    nearest = await store.vectors.nearest("default", "input", np.array([1.0, 0.0, 0.5]), 2)
    assert len(nearest) == 2
    assert [pk for pk, _ in nearest] == [pks["v1"], pks["v2"]]
    wrong = await gql(UPSERT, {"i": {"item": {"id": "v4", "embedding": [1.0, 2.0]}}})
    assert wrong["itemUpsert"]["userErrors"][0]["code"] == "DIMENSION_MISMATCH"
