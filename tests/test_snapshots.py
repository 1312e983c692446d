"""The in-memory catalogue copies never serve an item as it was: a write on one replica is
seen at once on that replica, and on another as soon as the change message arrives."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from conftest import REDIS_URL, eventually

from gql.server.app import create_app
from gql.server.database import limits_of
from storage.store import Store

UPSERT = """mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) { userErrors { code } } }"""
READ = '{ item(id: "s1") { title hidden } trending(first: 5) { item { itemId title } } }'


async def read(client: TestClient) -> dict:
    resp = await client.post("/graphql", json={"query": READ})
    body = await resp.json()
    assert "errors" not in body, body
    return body["data"]


async def test_item_changes_reach_every_replica(store, settings, database_url):
    other_store = await Store.open(database_url, REDIS_URL, limits=limits_of(settings))
    try:
        a = TestClient(TestServer(create_app(settings, store=store)))
        b = TestClient(TestServer(create_app(settings, store=other_store)))
        async with a, b:
            async def write(client: TestClient, item: dict) -> None:
                resp = await client.post("/graphql", json={"query": UPSERT,
                                                            "variables": {"i": {"item": item}}})
                assert (await resp.json())["data"]["itemUpsert"]["userErrors"] == []

            await write(a, {"id": "s1", "title": "First"})
            assert (await read(a))["item"]["title"] == "First"
            assert (await read(b))["item"]["title"] == "First"  # b builds its copy now
            await write(a, {"id": "s1", "title": "Second"})
            assert (await read(a))["item"]["title"] == "Second"  # the writer at once

            async def b_sees_second() -> bool:
                return (await read(b))["item"]["title"] == "Second"

            await eventually(b_sees_second)
            await write(b, {"id": "s1", "hidden": True})

            async def a_sees_hidden() -> bool:
                return (await read(a))["item"]["hidden"] is True

            await eventually(a_sees_hidden)
            resp = await b.post("/graphql", json={
                "query": 'mutation { itemDelete(input: {id: "s1"}) { deletedItemId } }'})
            assert (await resp.json())["data"]["itemDelete"]["deletedItemId"] == "s1"

            async def a_forgot() -> bool:
                return (await read(a))["item"] is None

            await eventually(a_forgot)
    finally:
        await other_store.close()
