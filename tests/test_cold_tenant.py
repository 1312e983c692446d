"""A new tenant before and after its first models: pages filled by popularity, and models
trained when the first events arrive and when the events grow -- not only on the timer."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from recsys_helpers import BULK_ITEMS, RECORD, catalogue, events

from gql.server.app import create_app

VERSIONS = "{ algorithms { name modelVersion metrics } }"
FIRST_PAGE = """query($u: String!) { recommendations(userId: $u, first: 3) {
  item { itemId } reasons { algorithm } } }"""


async def post(client, query, variables=None):
    resp = await client.post("/graphql", json={"query": query, "variables": variables})
    assert resp.status == 200
    body = await resp.json()
    assert "errors" not in body, body
    return body["data"]


async def test_before_any_model_the_first_page_is_the_most_popular_items(gql):
    items = [{"id": i, "title": f"item {i}"} for i in "abcde"]
    assert (await gql(BULK_ITEMS, {"i": {"items": items}}))["itemsBulkUpsert"][
        "userErrors"] == []
    counts = {"c": 4, "e": 3, "b": 2, "a": 1}
    clicks = [{"userId": f"u{n}", "itemId": item, "type": "click"}
              for item, times in counts.items() for n in range(times)]
    clicks.append({"userId": "u9", "itemId": "d", "type": "dislike"})  # not popularity
    assert (await gql(RECORD, {"i": {"interactions": clicks}}))["interactionsRecord"][
        "userErrors"] == []
    page = (await gql(FIRST_PAGE, {"u": "newcomer"}))["recommendations"]
    assert [r["item"]["itemId"] for r in page] == ["c", "e", "b"]
    assert all(r["reasons"][0]["algorithm"] == "fallback" for r in page)


async def test_models_are_trained_on_first_events_and_when_events_grow(store, settings):
    growing = settings.model_copy(update={"train_on_growth": 0.5})

    async def versions(client) -> dict[str, int | None]:
        data = await post(client, VERSIONS)
        return {a["name"]: a["modelVersion"] for a in data["algorithms"]}

    async def wait_for(client, ok, seconds: float = 30) -> dict[str, int | None]:
        for _ in range(int(seconds * 10)):
            current = await versions(client)
            if ok(current):
                return current
            await asyncio.sleep(0.1)
        return current

    everything = events()
    half = len(everything) // 2
    async with TestClient(TestServer(create_app(growing, store=store))) as client:
        await post(client, BULK_ITEMS, {"i": {"items": catalogue()}})
        assert set((await versions(client)).values()) == {None}
        await post(client, RECORD, {"i": {"interactions": everything[:half]}})
        first = await wait_for(client, lambda v: v["collaborative"] is not None)
        assert first["collaborative"] == 1, "first events arrived: trained without a timer"

        # a few more events (under half of what the models saw): no new training
        await post(client, RECORD, {"i": {"interactions": everything[half:half + 20]}})
        await asyncio.sleep(8)  # past the pause the trainer waits for
        assert (await versions(client))["collaborative"] == 1
        # the rest: the events grew by more than half since the models
        await post(client, RECORD, {"i": {"interactions": everything[half + 20:]}})
        later = await wait_for(client, lambda v: (v["collaborative"] or 0) > 1)
        assert later["collaborative"] == 2
        metrics = {a["name"]: a["metrics"] for a in (await post(client, VERSIONS))["algorithms"]}
        assert metrics["collaborative"]["events"] == len(everything)
