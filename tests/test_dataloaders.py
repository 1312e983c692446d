"""Resolving N related objects costs a constant number of SQL statements, not N."""

from __future__ import annotations

QUERY = """query($u: ID!, $n: Int!) { user(id: $u) { interactions(first: $n) {
  nodes { type item { itemId title } user { userId } } } } }"""


async def seed(gql, n_items: int) -> None:
    await gql("mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) "
              "{ upsertedCount } }",
              {"i": {"items": [{"id": f"i{k}", "title": f"T{k}"} for k in range(n_items)]}})
    await gql("mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) "
              "{ recordedCount } }",
              {"i": {"interactions": [{"userId": "u", "itemId": f"i{k}", "type": "view"}
                                      for k in range(n_items)]}})


async def test_statement_count_does_not_grow_with_page_size(gql, sql_counter):
    await seed(gql, 60)
    counts = {}
    for n in (5, 50):
        sql_counter.statements.clear()
        data = await gql(QUERY, {"u": "u", "n": n})
        assert len(data["user"]["interactions"]["nodes"]) == n
        assert {x["user"]["userId"] for x in data["user"]["interactions"]["nodes"]} == {"u"}
        counts[n] = len(sql_counter.selects)
    # user lookup + history page + one batch of items + one batch of users
    assert counts[5] == counts[50] <= 4, sql_counter.statements


async def test_items_connection_primes_the_item_loader(gql, sql_counter):
    await seed(gql, 30)
    sql_counter.statements.clear()
    await gql("{ items(first: 30) { nodes { itemId title } } }")
    assert len(sql_counter.selects) == 1
