async def test_item_roundtrip(gql):
    data = await gql("""mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) {
        created item { id itemId title categories attributes } userErrors { field message code } } }""",
        {"i": {"item": {"id": "m1", "title": "Heat", "categories": ["Crime"], "attributes": {"year": 1995}}}})
    print(data)
    got = await gql('{ item(id: "m1") { itemId title attributes } }')
    print(got)
