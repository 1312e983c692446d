"""State a client can make the server keep is bounded: per-request options never pile up
on shared models, caches have a size, swaps are atomic, old models are pruned, and one
tenant's vector dimension is its own."""

from __future__ import annotations

import copy
import threading

import numpy as np
from conftest import Caller
from recsys_helpers import TRAIN, seed

from engines.algorithm import HistoryEvent, Query, RecordedEvent
from engines.serving.ranking import rank
from engines.testing import planted_data
from plugins.collaborative import Collaborative
from plugins.trending import Trending

UPSERT = """mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) {
  item { itemId } userErrors { field message code } } }"""


def model_bytes(model: object) -> int:
    """Bytes of the numpy arrays a model holds (directly or in dicts/caches)."""
    total = 0
    for value in vars(model).values():
        values = value.values() if hasattr(value, "values") else [value]
        for v in values:
            if isinstance(v, np.ndarray):
                total += v.nbytes
    return total


def test_request_options_do_not_grow_shared_models():
    data = planted_data()
    trending = Trending()
    trending.fit(data)
    for hours in np.linspace(1, 5000, 500):  # 500 distinct windowHours values
        served = copy.copy(trending)  # what the service serves a request with overrides
        served.config = Trending.Config(window_hours=float(hours))
        served.score(Query())
    cached = len(trending._scores_cache)
    assert cached <= 8

    collab = Collaborative({"rank": 8})
    collab.fit(data)
    before = model_bytes(collab)
    query = Query.of(None, [HistoryEvent(1000, 1.0, 0.0)], 1.0)
    for exponent in np.linspace(-0.9, 0.9, 200):
        served = copy.copy(collab)  # what the service serves a request with overrides
        served.config = Collaborative.Config(rank=8, popularity_exponent=float(exponent))
        served.score(query)
    assert model_bytes(collab) == before


def test_online_trending_updates_are_atomic_for_readers():
    model = Trending()
    model.fit(planted_data())
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                served = copy.copy(model)
                served.config = Trending.Config(window_hours=float(np.random.randint(1, 500)))
                rank(served, Query(), 10)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for n in range(3000):
        item = 1000 + n % 20
        model.partial_fit([RecordedEvent("u", str(item), 1, item, "view", 1.0, None, 1.7e9 + n)])
    stop.set()
    for t in readers:
        t.join()
    assert errors == []


async def test_old_model_versions_are_pruned(gql, store):
    await seed(gql, train=False)
    for _ in range(5):
        res = await gql(TRAIN, {"i": {"algorithms": ["trending"]}})
        assert res["modelTrain"]["userErrors"] == []
    assert await store.artifacts.versions("default", "trending") == [3, 4, 5]
    latest = await store.artifacts.latest("default", "trending")
    assert latest is not None and latest.version == 5 and latest.blob


async def test_each_tenant_has_its_own_embedding_dimension(secured, keys):
    acme = Caller(secured, keys["acme:write"])
    globex = Caller(secured, keys["globex:write"])
    first = await acme(UPSERT, {"i": {"item": {"id": "a", "embedding": [1.0, 0.0, 0.5]}}})
    assert first["itemUpsert"]["userErrors"] == []
    other = await globex(UPSERT, {"i": {"item": {"id": "g", "embedding": [0.1] * 5}}})
    assert other["itemUpsert"]["userErrors"] == []
    wrong = (await globex(UPSERT, {"i": {"item": {"id": "h", "embedding": [0.1] * 3}}}))[
        "itemUpsert"]["userErrors"][0]
    assert wrong["code"] == "DIMENSION_MISMATCH"
    assert "5" in wrong["message"] and "acme" not in wrong["message"]
    again = await acme(UPSERT, {"i": {"item": {"id": "b", "embedding": [0.0, 1.0, 0.0]}}})
    assert again["itemUpsert"]["userErrors"] == []
