"""End to end on the MovieLens sample: import, train, and recommendations a person would
find sensible."""

from __future__ import annotations

from pathlib import Path

from recsys_helpers import TRAIN

from storage.io import importer as importing

SAMPLE = Path(__file__).parent / "data" / "movielens-sample"


async def test_movielens_end_to_end(store, gql):
    await importing.import_movielens(store, SAMPLE, progress=False)
    trained = await gql(TRAIN, {"i": {}})
    assert trained["modelTrain"]["userErrors"] == []

    history = (await gql('{ user(id: "1") { interactions(first: 100) '
                         "{ nodes { item { itemId } } } } }"))["user"]["interactions"]["nodes"]
    seen = {n["item"]["itemId"] for n in history}
    recs = (await gql('{ recommendations(userId: "1", first: 10) { item { itemId title } '
                      "reasons { algorithm becauseItem { itemId } } } }"))["recommendations"]
    assert len(recs) == 10
    assert not seen & {r["item"]["itemId"] for r in recs}
    because = {x["becauseItem"]["itemId"] for r in recs for x in r["reasons"]
               if x["becauseItem"]}
    assert because and because <= seen

    similar = (await gql('{ similarItems(itemId: "1", first: 10, algorithms: '
                         '[{name: "content"}]) { item { title categories } } }'))["similarItems"]
    assert sum("Animation" in s["item"]["categories"] for s in similar) >= 5

    comedies = (await gql('{ recommendations(userId: "2", first: 5, filter: '
                          '{categories: ["Comedy"], entityType: "movie"}) '
                          "{ item { categories } } }"))["recommendations"]
    assert len(comedies) == 5 and all("Comedy" in c["item"]["categories"] for c in comedies)

    hits = (await gql('{ search(text: "pixar animation", first: 5) { item { title tags } } }')
            )["search"]
    assert any("pixar" in h["item"]["tags"] for h in hits)
