"""Training and hot swap: new versions replace old ones on every replica while requests keep
being answered; only one trainer runs at a time; the background trainer needs no call."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from recsys_helpers import RECOMMEND, TRAIN, seed

from gql.server.app import create_app

VERSIONS = "{ algorithms { name modelVersion } }"


async def post(client, query, variables=None):
    resp = await client.post("/graphql", json={"query": query, "variables": variables})
    assert resp.status == 200
    return await resp.json()


async def versions(client) -> dict[str, int | None]:
    body = await post(client, VERSIONS)
    return {a["name"]: a["modelVersion"] for a in body["data"]["algorithms"]}


async def test_requests_keep_being_answered_while_models_are_retrained(gql, client):
    await seed(gql)
    assert (await versions(client))["collaborative"] == 1
    answered = []

    async def ask():
        for n in range(40):
            body = await post(client, RECOMMEND, {"u": f"scifi-fan-{n % 20}", "n": 5})
            assert "errors" not in body, body
            answered.append(len(body["data"]["recommendations"]))
            await asyncio.sleep(0)

    train = asyncio.create_task(post(client, TRAIN, {"i": {}}))
    await asyncio.gather(ask(), ask())
    result = await train
    assert result["data"]["modelTrain"]["userErrors"] == []
    assert answered and set(answered) == {5}
    assert (await versions(client))["collaborative"] == 2


async def test_only_one_trainer_at_a_time(gql, client):
    await seed(gql, train=False)
    a, b = await asyncio.gather(post(client, TRAIN, {"i": {}}), post(client, TRAIN, {"i": {}}))
    errors = [r["data"]["modelTrain"]["userErrors"] for r in (a, b)]
    assert sorted(len(e) for e in errors) == [0, 1]
    busy = next(e for e in errors if e)[0]
    assert busy["code"] == "BUSY"


async def test_a_model_trained_on_one_replica_is_served_by_another(gql, store, settings):
    await seed(gql, train=False)
    replica_a = TestClient(TestServer(create_app(settings, store=store)))
    replica_b = TestClient(TestServer(create_app(settings, store=store)))
    async with replica_a, replica_b:
        assert (await versions(replica_b))["item_knn"] is None
        await post(replica_a, TRAIN, {"i": {"algorithms": ["item_knn"]}})
        for _ in range(50):  # delivered over Redis pub/sub, well before the 30 s poll
            if (await versions(replica_b))["item_knn"] == 1:
                break
            await asyncio.sleep(0.1)
        assert (await versions(replica_b))["item_knn"] == 1
        body = await post(replica_b, RECOMMEND, {"u": "romance-fan-2", "n": 5,
                                                 "a": [{"name": "item_knn"}]})
        assert len(body["data"]["recommendations"]) == 5


async def test_background_trainer_retrains_when_data_changes(gql, store, settings):
    await seed(gql, train=False)
    quick = settings.model_copy(update={"train_on_start": True, "train_interval_seconds": 0.3})

    async def wait_for(client, ok) -> dict:
        for _ in range(100):
            current = await versions(client)
            if ok(current):
                return current
            await asyncio.sleep(0.1)
        return current

    async with TestClient(TestServer(create_app(quick, store=store))) as client:
        first = await wait_for(client, lambda v: all(x is not None for x in v.values()))
        assert all(v is not None for v in first.values()), first
        await asyncio.sleep(1.0)  # several rounds with nothing new: no retraining
        assert await versions(client) == first
        await post(client, """mutation { interactionRecord(input: {interaction:
            {userId: "late", itemId: "scifi-1", type: "view"}}) { recordedCount } }""")
        later = await wait_for(client, lambda v: v["collaborative"] > first["collaborative"])
        assert later["collaborative"] == first["collaborative"] + 1
