"""Planted-structure data sent through the API: three genres, users who stick to one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

BULK_ITEMS = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount userErrors { field message } } }"""
RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) {
  recordedCount userErrors { field message } } }"""
TRAIN = """mutation($i: ModelTrainInput!) { modelTrain(input: $i) {
  models { algorithm version } userErrors { field message code } } }"""
RECOMMEND = """query($u: String!, $n: Int!, $a: [AlgorithmInput!], $f: RecommendationFilterInput,
  $seen: Boolean! = true) {
  recommendations(userId: $u, first: $n, algorithms: $a, filter: $f, excludeSeen: $seen) {
    rank score item { itemId categories attributes }
    reasons { algorithm weight score contribution becauseItem { itemId } } } }"""

GENRES = ("scifi", "romance", "horror")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def genre_of(item_id: str) -> str:
    return item_id.split("-")[0]


def catalogue(per_genre: int = 20) -> list[dict[str, Any]]:
    words = {"scifi": "space robot galaxy", "romance": "love wedding heart",
             "horror": "ghost blood night"}
    return [{"id": f"{g}-{k}", "title": f"{words[g].split()[k % 3]} story {k}",
             "text": words[g], "categories": [g], "tags": [f"{g}-tag"],
             "attributes": {"price": 5 + k, "year": 2000 + k}}
            for g in GENRES for k in range(per_genre)]


def events(users_per_genre: int = 25, per_user: int = 8, per_genre: int = 20,
           seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for g in GENRES:
        for u in range(users_per_genre):
            # popular items (low k) are chosen more often, like real catalogues
            items = rng.choices(range(per_genre), weights=[per_genre - k for k in
                                                           range(per_genre)], k=per_user)
            for n, k in enumerate(items):
                out.append({"userId": f"{g}-fan-{u}", "itemId": f"{g}-{k}",
                            "type": rng.choice(["view", "click", "purchase"]),
                            "timestamp": (T0 + timedelta(hours=u + n)).isoformat()})
    return out


async def seed(gql, *, train: bool = True) -> None:
    res = await gql(BULK_ITEMS, {"i": {"items": catalogue()}})
    assert res["itemsBulkUpsert"]["userErrors"] == []
    res = await gql(RECORD, {"i": {"interactions": events()}})
    assert res["interactionsRecord"]["userErrors"] == []
    if train:
        res = await gql(TRAIN, {"i": {}})
        assert res["modelTrain"]["userErrors"] == []


async def recommend(gql, user: str, n: int = 10, **variables: Any) -> list[dict[str, Any]]:
    data = await gql(RECOMMEND, {"u": user, "n": n, **variables})
    return data["recommendations"]

#: a user's top 10 by the default blend (what a webhook's watched list is)
LIST_FIRST_10 = """query($u: String!) { recommendations(userId: $u, first: 10) {
  item { itemId } } }"""
