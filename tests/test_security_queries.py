"""Hostile or odd but well-typed queries get a clear error naming the field (or simply
work): exponential fragments, costly nesting, unstorable strings, forged cursors, huge id
lists, JSON filter values, out-of-range numbers."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import Socket
from recsys_helpers import seed

UPSERT = """mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) {
  item { itemId } userErrors { field message code } } }"""


def fragment_bomb(levels: int) -> str:
    """Each fragment spreads the next three times: 3^levels fields when expanded."""
    parts = ["query Bomb { ...F0 }"]
    for n in range(levels):
        parts.append(f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} ...F{n + 1} }}")
    parts.append(f"fragment F{levels} on Query {{ __typename }}")
    return "\n".join(parts)


def codes(body: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


@pytest.mark.timeout(60)
async def test_a_fragment_bomb_is_refused_at_once_and_the_server_keeps_serving(client, gql):
    bomb = fragment_bomb(40)  # about 1.6 KB; 3^40 fields if walked naively
    assert len(bomb) < 2000
    body = await gql(bomb, expect_errors=True)
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    assert "cost" in body["errors"][0]["message"]
    assert (await gql("{ __typename }")) == {"__typename": "Query"}
    sock = await (await Socket.open(client)).acked()  # the same guard on sockets
    await sock.subscribe("1", bomb)
    msg = await sock.message()
    assert msg["type"] == "error"
    assert msg["payload"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    await sock.close()


async def test_a_fragment_cycle_is_refused(gql):
    body = await gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
                     expect_errors=True)
    assert body["errors"] and "A" in body["errors"][0]["message"]


async def test_nested_histories_cost_what_they_multiply_to(gql, sql_counter):
    await gql(UPSERT, {"i": {"item": {"id": "i"}}})
    events = [{"userId": f"u{n % 3}", "itemId": "i", "type": "view"} for n in range(12)]
    await gql("""mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i)
                 { recordedCount } }""", {"i": {"interactions": events}})
    three = ("{ user(id: \"u0\") { interactions(first: 100) { nodes { user { interactions("
             "first: 100) { nodes { user { interactions(first: 100) { nodes { type } } } } } } }"
             " } } }")
    body = await gql(three, expect_errors=True)
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    # two levels of 10 are fine, and cost a handful of statements, not one per event
    two = ('{ a: user(id: "u0") { interactions(first: 10) { nodes { user { interactions('
           'first: 10) { nodes { type } } } } } } b: user(id: "u1") { interactions(first: 10) '
           '{ nodes { type } } } }')
    sql_counter.statements.clear()
    data = await gql(two)
    nested = data["a"]["interactions"]["nodes"]
    assert len(nested) == 4 and all(len(n["user"]["interactions"]["nodes"]) == 4 for n in nested)
    assert len(sql_counter.selects) <= 5, sql_counter.selects


@pytest.mark.parametrize(
    "query",
    [
        '{ item(id: "a\\u0000b") { itemId } }',
        '{ recommendations(userId: "\\u0000") { rank } }',
        '{ similarItems(itemId: "x\\u0000") { rank } }',
        '{ search(text: "x\\u0000") { score } }',
    ],
)
async def test_unstorable_strings_in_arguments_are_client_errors(gql, query):
    body = await gql(query, expect_errors=True)
    assert codes(body) == ["INVALID"], body
    assert "NUL" in body["errors"][0]["message"]  # (lone surrogates fail the GraphQL parser)


async def test_unstorable_strings_in_variables_name_the_variable(gql):
    query = "query($f: RecommendationFilterInput) { trending(filter: $f) { rank } }"
    for bad in ("\x00", "\ud800"):
        body = await gql(query, {"f": {"categories": ["ok", f"x{bad}"]}}, expect_errors=True)
        assert body["errors"][0]["extensions"] == {"code": "INVALID",
                                                   "field": "$f.categories.1"}
    bad_key = "query($i: ID!) { item(id: $i) { itemId } }"
    body = await gql(bad_key, {"i": "\x00"}, expect_errors=True)
    assert body["errors"][0]["extensions"]["field"] == "$i"


async def test_unstorable_strings_in_mutations_are_user_errors_per_row(gql):
    res = await gql("""mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
        upsertedCount userErrors { field code } } }""",
                    {"i": {"items": [{"id": "ok"}, {"id": "bad", "title": "\ud800"},
                                     {"id": "nul\x00"}]}})
    assert res["itemsBulkUpsert"]["upsertedCount"] == 1
    assert [e["field"] for e in res["itemsBulkUpsert"]["userErrors"]] == [
        ["input", "items", "1", "title"], ["input", "items", "2", "id"]]
    for mutation in ('mutation { itemDelete(input: {id: "\\u0000"}) { userErrors { code } } }',
                     'mutation { userDelete(input: {id: "\\u0000"}) { userErrors { code } } }'):
        body = await gql(mutation, expect_errors=True)
        assert "Unexpected error." not in json.dumps(body), body


async def test_forged_cursors_are_client_errors(gql):
    import base64

    for key in ([], ["x"], [True], [-1], [2**70], {"a": 1}, "nope", [1.5]):
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        body = await gql("query($c: String) { items(after: $c) { nodes { itemId } } }",
                         {"c": cursor}, expect_errors=True)
        assert codes(body) == ["INVALID"] and body["errors"][0]["extensions"][
            "field"] == "after", (key, body)
    for key in (["2024-01-01T00:00:00", 1], ["yesterday", 1], [1, 1]):
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        body = await gql('query($c: String) { user(id: "u") { interactions(after: $c) '
                         "{ nodes { type } } } }", {"c": cursor}, expect_errors=True)
        assert "Unexpected error." not in json.dumps(body), (key, body)


async def test_more_ids_than_a_statement_can_carry_work(gql):
    await gql(UPSERT, {"i": {"item": {"id": "wanted"}}})
    ids = [f"id-{n}" for n in range(19_999)] + ["wanted"]
    data = await gql("query($f: ItemFilterInput) { items(filter: $f, first: 5) "
                     "{ nodes { itemId } } }", {"f": {"ids": ids}})
    assert data["items"]["nodes"] == [{"itemId": "wanted"}]
    body = await gql("query($f: ItemFilterInput) { items(filter: $f) { nodes { itemId } } }",
                     {"f": {"ids": [*ids, "one-too-many"]}}, expect_errors=True)
    assert codes(body) == ["TOO_MANY"]
    recs = await gql("query($f: RecommendationFilterInput) { trending(filter: $f) { rank } }",
                     {"f": {"excludeIds": ids}})
    assert recs == {"trending": []}


async def test_json_values_in_attribute_filters_work(gql):
    await seed(gql)
    await gql(UPSERT, {"i": {"item": {"id": "scifi-1", "attributes": {
        "price": 6, "year": 2001, "specs": {"color": "red"}, "langs": ["en", "de"]}}}})
    query = """query($f: RecommendationFilterInput) { trending(first: 5, filter: $f) {
        item { itemId } } }"""
    for attr in ({"key": "specs", "eq": {"color": "red"}}, {"key": "langs", "eq": ["en", "de"]},
                 {"key": "specs", "in": [{"color": "blue"}, {"color": "red"}]}):
        data = await gql(query, {"f": {"attributes": [attr]}})
        assert [r["item"]["itemId"] for r in data["trending"]] == ["scifi-1"], attr


async def test_out_of_range_numbers_are_refused_with_the_field(gql):
    res = await gql(UPSERT, {"i": {"item": {"id": "v", "embedding": [1e39, 1.0]}}})
    assert res["itemUpsert"]["userErrors"][0]["code"] == "NOT_FINITE"
    res = await gql(UPSERT, {"i": {"item": {"id": "v", "embedding": [1e38, 1.0]}}})
    assert res["itemUpsert"]["userErrors"] == []
    deep: dict = {}
    for _ in range(600):
        deep = {"a": deep}
    res = await gql(UPSERT, {"i": {"item": {"id": "deep", "attributes": deep}}},
                    expect_errors=True)
    assert "Unexpected error." not in json.dumps(res)
    shallow: dict = {"x": 1}
    for _ in range(30):
        shallow = {"a": shallow}
    res = await gql(UPSERT, {"i": {"item": {"id": "deep", "attributes": shallow}}})
    assert res["itemUpsert"]["userErrors"] == [
        {"field": ["input", "item", "attributes"], "message": res["itemUpsert"]["userErrors"][0][
            "message"], "code": "TOO_DEEP"}]
    body = await gql('{ recommendations(userId: "u", algorithms: [{name: "trending", '
                     "weight: 1e308}, {name: \"content\", weight: 1e308}]) { rank } }",
                     expect_errors=True)
    assert codes(body) == ["INVALID_WEIGHT"]
    events = [{"userId": "u", "itemId": "v", "type": "view", "weight": 1e300}]
    res = await gql("""mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i)
        { recordedCount userErrors { field code } } }""", {"i": {"interactions": events}})
    assert res["interactionsRecord"]["userErrors"] == [
        {"field": ["input", "interactions", "0", "weight"], "code": "INVALID"}]


async def test_concurrent_odd_queries_never_mask_faults(gql):
    queries = ['{ similarItems(itemId: "\\u0000") { rank } }',
               '{ trending(windowHours: 1e-300) { rank } }',
               '{ recommendations(userId: "u", first: 0) { rank } }',
               '{ search(text: "' + "x" * 999 + '") { score } }']
    bodies = await asyncio.gather(*(gql(q, expect_errors=True) for q in queries))
    for q, body in zip(queries, bodies, strict=True):
        assert "Unexpected error." not in json.dumps(body), (q, body)


async def test_repeating_one_branch_many_times_is_refused_before_validation(gql):
    """Merging same-named selections costs graphql-core quadratic time; a few hundred
    repeats of one branch (spread through fragments) are refused up front."""
    fragments = " ".join(f"fragment F{i} on Query {{ items(first: 1) {{ nodes {{ itemId }} }} }}"
                         for i in range(10))
    groups = " ".join(f"fragment G{j} on Query {{ " + " ".join(f"...F{i}" for i in range(10))
                      + " }" for j in range(10))
    query = "query { " + " ".join(f"...G{j}" for j in range(10)) + " } " + fragments + groups
    body = await gql(query, expect_errors=True)
    assert "items is selected 100 times over" in body["errors"][0]["message"]
    ok = await gql("{ a: items(first: 1) { nodes { itemId } } "
                   "items(first: 1) { nodes { title } } }")
    assert set(ok) == {"a", "items"}


async def test_repeats_nested_in_repeats_are_counted_together(gql):
    """Five repeats of a branch inside five repeats of its parent make 25 selections to
    merge in each of five places; seven by seven by seven is refused."""
    def nested(width: int, levels: int) -> str:
        inner = "itemId"
        for _ in range(levels):
            inner = " ".join(["nodes { " + inner + " }"] * width)
        return "{ items(first: 2) { " + inner + " } }"

    assert "items" in await gql(nested(5, 1))
    body = await gql(nested(7, 3), expect_errors=True)
    assert "times over" in body["errors"][0]["message"]


async def test_a_variable_default_counts_in_the_cost(gql):
    query = ("query($n: Int = 100) { user(id: \"u0\") { interactions(first: $n) { nodes { "
             "user { interactions(first: $n) { nodes { user { interactions(first: $n) { "
             "nodes { type } } } } } } } } } }")
    assert codes(await gql(query, expect_errors=True)) == ["QUERY_TOO_COSTLY"]
    assert codes(await gql(query, {"n": 2}, expect_errors=True)) == []
    # the analysis of a query text is remembered per variable values, never across them
    assert codes(await gql(query, {"n": 2}, expect_errors=True)) == []
    assert codes(await gql(query, {"n": 100}, expect_errors=True)) == ["QUERY_TOO_COSTLY"]


async def test_huge_variables_of_a_query_are_refused_before_they_are_walked(gql):
    """Unused or not, a query's variables are bounded (a mutation's are checked row by
    row)."""
    body = await gql("query($x: JSON) { __typename }", {"x": list(range(200_000))},
                     expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY"
    assert body["errors"][0]["extensions"]["field"] == "variables"


async def test_attribute_filters_take_a_bounded_number_of_values_in_all(gql):
    await seed(gql)
    query = """query($f: RecommendationFilterInput) { trending(first: 5, filter: $f) {
        item { itemId } } }"""
    many = [{"key": f"k{n}", "in": list(range(900))} for n in range(5)]
    body = await gql(query, {"f": {"attributes": many}}, expect_errors=True)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "TOO_MANY"
    assert error["extensions"]["field"] == "filter.attributes.1"
    assert "across all attributes" in error["message"]


async def test_many_errors_in_one_request_are_logged_as_one_line(gql, caplog):
    import logging

    fields = " ".join(f"nope{n}" for n in range(25))
    with caplog.at_level(logging.INFO, logger="recograph.errors"):
        body = await gql("{ " + fields + " }", expect_errors=True)
    assert len(body["errors"]) == 25
    lines = [r.getMessage() for r in caplog.records if r.name == "recograph.errors"]
    assert len(lines) == 1 and "and 24 more" in lines[0], lines
