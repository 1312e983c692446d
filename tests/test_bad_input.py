"""Every malformed input gets a typed error naming the field; nothing is half-written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) {
  recordedCount duplicateCount userErrors { field message code } } }"""
UPSERT = """mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) {
  item { itemId } userErrors { field message code } } }"""


@pytest.fixture
async def catalogue(gql):
    await gql(UPSERT, {"i": {"item": {"id": "i0"}}})


def event(**overrides):
    return {"userId": "u", "itemId": "i0", "type": "view"} | overrides


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"userId": ""}, "userId", "BLANK"),
        ({"userId": "   "}, "userId", "BLANK"),
        ({"itemId": "x" * 257}, "itemId", "TOO_LONG"),
        ({"userId": "bad\nid"}, "userId", "INVALID"),
        (
            {"timestamp": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
            "timestamp",
            "IN_FUTURE",
        ),
        ({"timestamp": "2024-01-01T00:00:00"}, "timestamp", "INVALID"),
        ({"type": "rating"}, "value", "BLANK"),
        ({"metadata": {"k": "v" * 70_000}}, "metadata", "TOO_LARGE"),
        ({"metadata": ["not", "an", "object"]}, "metadata", "INVALID"),
        ({"idempotencyKey": ""}, "idempotencyKey", "BLANK"),
    ],
)
async def test_event_field_errors(gql, store, catalogue, overrides, field, code):
    res = (await gql(RECORD, {"i": {"interactions": [event(), event(**overrides)]}}))[
        "interactionsRecord"
    ]
    assert res["recordedCount"] == 1  # the valid row still lands
    assert [(e["field"], e["code"]) for e in res["userErrors"]] == [
        (["input", "interactions", "1", field], code)
    ]
    assert res["userErrors"][0]["message"]


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_are_refused(client, store, catalogue, bad):
    query = (
        "mutation($w: Float) { interactionRecord(input: {interaction: "
        '{userId: "u", itemId: "i0", type: "view", weight: $w}}) '
        "{ recordedCount userErrors { field code } } }"
    )
    body = json.dumps({"query": query, "variables": {"w": "W"}}).replace('"W"', bad)
    resp = await client.post("/graphql", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    payload = await resp.json()
    assert payload["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert f"{bad} is not a JSON number" in payload["errors"][0]["message"]
    assert await store.interactions.count("default") == 0


async def test_non_finite_weights_from_files_are_refused(store, catalogue):
    """Files and plugins can carry floats JSON cannot; the write path checks them too."""
    from storage.events import EventInput

    res = await store.events.record(
        "default", [EventInput("u", "i0", "view", weight=float("nan"))], ("rows",)
    )
    assert [(e.field, e.code) for e in res.errors] == [(("rows", "0", "weight"), "NOT_FINITE")]


async def test_nan_inside_attributes_is_refused(store):
    res = await store.catalog.upsert_items(
        "default", [{"external_id": "x", "attributes": {"p": [1.0, float("inf")]}}], ("items",)
    )
    assert [(e.field, e.code) for e in res.errors] == [(("items", "0", "attributes"), "NOT_FINITE")]
    assert await store.items.count("default") == 0


@pytest.mark.parametrize(
    ("item", "field", "code"),
    [
        ({"id": ""}, ["input", "item", "id"], "BLANK"),
        ({"id": "a", "title": "t" * 100_001}, ["input", "item", "title"], "TOO_LONG"),
        ({"id": "a", "categories": ["ok", " "]}, ["input", "item", "categories", "1"], "BLANK"),
        ({"id": "a", "tags": [str(n) for n in range(201)]}, ["input", "item", "tags"], "TOO_MANY"),
        ({"id": "a", "attributes": [1, 2]}, ["input", "item", "attributes"], "INVALID"),
        ({"id": "a", "embedding": [0.0, 0.0]}, ["input", "item", "embedding"], "INVALID"),
        ({"id": "a", "text": "nul\x00byte"}, ["input", "item", "text"], "INVALID"),
    ],
)
async def test_item_field_errors(gql, store, item, field, code):
    res = (await gql(UPSERT, {"i": {"item": item}}))["itemUpsert"]
    assert res["item"] is None
    assert [(e["field"], e["code"]) for e in res["userErrors"]] == [(field, code)]
    assert await store.items.count("default") == 0


async def test_wrong_types_are_graphql_errors_not_crashes(gql):
    res = await gql(
        'mutation { itemUpsert(input: {item: {id: 12, hidden: "yes"}}) { userErrors { code } } }',
        expect_errors=True,
    )
    assert res["errors"] and all("Traceback" not in e["message"] for e in res["errors"])
    res = await gql('query { items(first: "ten") { nodes { itemId } } }', expect_errors=True)
    assert "Int" in res["errors"][0]["message"]


@pytest.mark.parametrize(
    "embedding", [[1.0, "2"], [1.0, True], [[1.0], [2.0]], [1.0, None], "1,2", {"x": 1.0}]
)
async def test_an_embedding_of_anything_but_numbers_names_the_field(gql, store, embedding):
    res = await gql(UPSERT, {"i": {"item": {"id": "a", "embedding": embedding}}},
                    expect_errors=True)
    (error,) = res["errors"]
    assert ".item.embedding" in error["message"] and "list of numbers" in error["message"]
    assert await store.items.count("default") == 0


async def test_embeddings_as_literals_and_single_numbers(gql, store):
    ok = 'mutation { itemUpsert(input: {item: {id: "lit", embedding: [1, 0.5, -2e-1]}}) ' \
         "{ userErrors { code } } }"
    assert (await gql(ok))["itemUpsert"]["userErrors"] == []
    pk = (await store.items.pks("default", ["lit"]))["lit"]
    nearest = await store.vectors.nearest("default", "input", np.array([1.0, 0.5, -0.2]), 1)
    assert nearest[0][0] == pk and nearest[0][1] == pytest.approx(0.0, abs=1e-5)  # distance
    bad = 'mutation { itemUpsert(input: {item: {id: "x", embedding: [1, "a"]}}) ' \
          "{ userErrors { code } } }"
    res = await gql(bad, expect_errors=True)
    assert "list of numbers" in res["errors"][0]["message"]
    one = await gql(UPSERT, {"i": {"item": {"id": "one", "embedding": 0.5}}})
    assert one["itemUpsert"]["userErrors"][0]["code"] == "DIMENSION_MISMATCH"  # 1 ≠ 3 dims


async def test_oversize_batches_are_refused_whole(gql, store, settings):
    n = settings.max_batch_size + 1
    res = (await gql(RECORD, {"i": {"interactions": [event()] * n}}))["interactionsRecord"]
    assert res["recordedCount"] == 0
    assert res["userErrors"][0]["code"] == "TOO_MANY"
    assert res["userErrors"][0]["field"] == ["input", "interactions"]


async def test_huge_body_gets_413_json(client, settings):
    body = b'{"query": "{ __typename }", "pad": "' + b"x" * (settings.max_body_bytes + 1) + b'"}'
    resp = await client.post("/graphql", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    payload = await resp.json()
    assert payload["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_syntax_errors_and_garbage_bodies(client):
    resp = await client.post("/graphql", json={"query": "{ items(first: 1) { nodes "})
    assert resp.status == 200
    assert "Syntax Error" in (await resp.json())["errors"][0]["message"]
    resp = await client.post(
        "/graphql", data=b"\xff\xfe not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert "Traceback" not in await resp.text()


async def test_internal_faults_are_masked(gql, store, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("password=secret in some internal message")

    monkeypatch.setattr(store.items, "page", broken)
    res = await gql("{ items(first: 1) { nodes { itemId } } }", expect_errors=True)
    assert res["errors"][0]["message"] == "Unexpected error."
    assert "secret" not in str(res)
