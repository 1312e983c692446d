"""Hybrid search as a person uses it: exact titles first, typos and unfinished words, tags,
search syntax, filters, fresh edits -- each hit saying which retrievers found it."""

from __future__ import annotations

import csv
import random
import time
from collections import Counter
from pathlib import Path

from recsys_helpers import BULK_ITEMS, TRAIN

from storage.io import importer as importing

SAMPLE = Path(__file__).parent / "data" / "movielens-sample"
SEARCH = """query($t: String!, $n: Int! = 10, $r: [SearchRetriever!],
  $f: RecommendationFilterInput) {
  search(text: $t, first: $n, retrievers: $r, filter: $f) {
    score matches { retriever rank score } item { itemId title tags categories } } }"""

PLANTED = [
    {"id": "pie", "title": "Apple Pie", "text": "a warm dessert", "tags": ["baking"]},
    {"id": "green", "title": "Green Apple", "text": "crisp fruit", "tags": ["fruit"]},
    {"id": "recipes", "title": "Pie and Apple Recipes", "tags": ["baking", "book"]},
    {"id": "crumble", "title": "Crumble", "text": "apple crumble with oats",
     "tags": ["apple pie"], "categories": ["dessert"]},
    {"id": "tart", "title": "Tarte Tatin", "text": "caramelised apples", "tags": ["baking"],
     "categories": ["dessert"]},
    {"id": "hidden", "title": "Apple Pie Deluxe", "hidden": True},
]


async def search(gql, text: str, **variables) -> list[dict]:
    return (await gql(SEARCH, {"t": text, **variables}))["search"]


def ids(hits: list[dict]) -> list[str]:
    return [h["item"]["itemId"] for h in hits]


def sample_titles() -> dict[str, str]:
    """The sample's films by id, with the title as the importer stores it (no year)."""
    with (SAMPLE / "movies.csv").open() as fh:
        return {r["movieId"]: r["title"].rsplit(" (", 1)[0] for r in csv.DictReader(fh)}


async def test_typing_a_films_exact_title_finds_that_film_first(store, gql):
    await importing.import_movielens(store, SAMPLE, progress=False)
    assert (await gql(TRAIN, {"i": {}}))["modelTrain"]["userErrors"] == []
    titles = sample_titles()
    counts = Counter(t.lower() for t in titles.values())
    unique = sorted(i for i, t in titles.items() if counts[t.lower()] == 1)
    for movie in [*random.Random(7).sample(unique, 60), "2"]:  # "2" is Jumanji
        hits = await search(gql, titles[movie].lower(), n=3)
        assert hits and hits[0]["item"]["itemId"] == movie, (titles[movie], hits)
        assert hits[0]["score"] > 2  # tier 2: the title is the text

    # typos and unfinished words go through trigrams and prefixes
    typo = await search(gql, "jumanjy", n=3)
    assert ids(typo)[0] == "2" and "TRIGRAM" in {m["retriever"] for m in typo[0]["matches"]}
    unfinished = await search(gql, "toy sto", n=3)
    assert {"1", "3114"} <= set(ids(unfinished))  # Toy Story and Toy Story 2

    # a tag finds the films carrying it
    tagged = await search(gql, "pixar", n=5)
    assert tagged and all("pixar" in [t.lower() for t in h["item"]["tags"]]
                          for h in tagged[:3])


async def test_hits_holding_every_word_rank_first_and_say_how_they_were_found(gql):
    assert (await gql(BULK_ITEMS, {"i": {"items": PLANTED}}))["itemsBulkUpsert"][
        "userErrors"] == []
    hits = await search(gql, "apple pie")
    order = ids(hits)
    assert order[0] == "pie"  # the title is the text
    # every word, in a title, then in tags; one word only comes after
    assert order.index("recipes") < order.index("green")
    assert order.index("crumble") < order.index("green")
    assert "hidden" not in order
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    first = {m["retriever"]: m["rank"] for m in hits[0]["matches"]}
    assert first.get("FULLTEXT") == 1
    # items hold every word: no typo to forgive, so the costly trigram scan did not run
    assert "TRIGRAM" not in {m["retriever"] for h in hits for m in h["matches"]}
    typo = await search(gql, "aple pie")
    assert ids(typo)[0] == "pie" and "TRIGRAM" in {m["retriever"] for m in typo[0]["matches"]}

    # search syntax: a quoted phrase must appear, a minus word must not
    phrase = ids(await search(gql, '"apple pie"'))
    assert set(phrase) == {"pie", "crumble"}  # the crumble's tag is the phrase
    # ("tart" has "apples": only the unfinished last word matches by prefix)
    assert set(ids(await search(gql, "apple -pie", r=["FULLTEXT"]))) == {"green"}

    # filters bind every retriever
    desserts = await search(gql, "apple", f={"categories": ["dessert"]})
    assert set(ids(desserts)) == {"crumble", "tart"}


async def test_retrievers_can_be_chosen_and_an_empty_choice_is_refused(gql):
    await gql(BULK_ITEMS, {"i": {"items": PLANTED}})
    only = await search(gql, "aple", r=["TRIGRAM"])
    assert ids(only)[:2] and all(m["retriever"] == "TRIGRAM" for h in only
                                for m in h["matches"])
    assert "FULLTEXT" not in {m["retriever"] for h in only for m in h["matches"]}
    none = await gql(SEARCH, {"t": "apple", "r": []}, expect_errors=True)
    error = none["errors"][0]
    assert error["extensions"]["code"] == "INVALID" and "retrievers" in error["message"]
    assert error["extensions"]["field"] == "retrievers"


async def test_new_and_edited_items_are_found_at_once_without_training(gql):
    await gql(BULK_ITEMS, {"i": {"items": PLANTED}})
    assert ids(await search(gql, "zanzibar")) == []
    await gql(BULK_ITEMS, {"i": {"items": [{"id": "tart", "title": "Zanzibar Tart"}]}})
    assert ids(await search(gql, "zanzibar"))[0] == "tart"
    await gql(BULK_ITEMS, {"i": {"items": [{"id": "tart", "hidden": True}]}})
    assert "tart" not in ids(await search(gql, "zanzibar"))


async def test_any_text_a_person_can_type_is_searched_without_error(gql):
    await gql(BULK_ITEMS, {"i": {"items": PLANTED}})
    odd = ["&|!():*", "'", "\\", '"apple', "-", "- -pie", "or", "apple OR pie", "x" * 999,
           "ÄPFEL", "🍎 pie", "apple:*", "<->", "a b c d e f g h i j k l m n o p q r s t u v",
           " ".join(["apple"] * 160), "%_", "pie\tapple\n"]
    for text in odd:
        hits = await search(gql, text)
        assert isinstance(hits, list), text
    assert ids(await search(gql, "🍎 pie"))[:1] == ["pie"]


async def test_search_never_crosses_tenants(gql, store):
    """Search runs as the service's own role (indexes work there), so the tenant
    condition each retriever carries is what keeps tenants apart."""
    from engines.serving.rules import ItemRules

    await gql(BULK_ITEMS, {"i": {"items": PLANTED}})
    statements: list[str] = []
    store.hot.observers.append(statements.append)
    mine = await store.search.retrieve("default", "apple pie", 30, ItemRules())
    assert mine["fulltext"]
    # one round trip on the hot-read pool, not a transaction through SQLAlchemy
    assert any("ts_rank_cd" in sql for sql in statements)
    other = await store.search.retrieve("other", "apple pie", 30, ItemRules())
    assert other == {"fulltext": [], "trigram": [], "vector": []}
    typo = await store.search.retrieve("other", "aple", 30, ItemRules(), None, ("trigram",))
    assert typo == {"trigram": []}
    fast_typo = await store.search.retrieve("default", "aple", 30, ItemRules(), None,
                                            ("trigram",))
    assert fast_typo["trigram"]
    # while that pool rests (after a failure), SQLAlchemy's path gives the same answers
    store.hot._resting_until = time.monotonic() + 60
    try:
        assert await store.search.retrieve("default", "apple pie", 30, ItemRules()) == mine
        assert await store.search.retrieve("default", "aple", 30, ItemRules(), None,
                                           ("trigram",)) == fast_typo
    finally:
        store.hot._resting_until = 0.0
    typo = await store.search.retrieve("other", "aple", 30, ItemRules(), None, ("trigram",))
    assert typo == {"trigram": []}


async def test_filters_of_every_kind_hold_without_upsetting_the_fast_path(gql, store):
    """Searches run on the hot-read pool unless a filter needs SQLAlchemy's conversions
    (an attribute's JSON): those go the usual way, and must not make the pool rest, which
    would slow every recommendation's history read for seconds."""
    items = [{**item, "attributes": {"colour": "red" if "Apple" in item["title"] else "green",
                                     "price": n}}
             for n, item in enumerate(PLANTED)]
    await gql(BULK_ITEMS, {"i": {"items": items}})
    for kind in ('{attributes: [{key: "colour", eq: "red"}]}',
                 '{attributes: [{key: "colour", in: ["red", "blue"]}]}',
                 '{attributes: [{key: "price", lte: 2}]}',
                 '{categories: ["dessert"]}', '{tags: ["baking"]}'):
        found = (await gql(f'{{ search(text: "apple", first: 10, filter: {kind}) '
                           "{ item { itemId title categories tags attributes } } }"))["search"]
        assert found, kind
        for hit in found:
            item = hit["item"]
            if "colour" in kind:
                assert item["attributes"]["colour"] == "red"
            if "price" in kind:
                assert item["attributes"]["price"] <= 2
            if "dessert" in kind:
                assert "dessert" in item["categories"]
            if "baking" in kind:
                assert "baking" in item["tags"]
        assert store.hot._resting_until <= time.monotonic(), kind


async def test_excluded_ids_are_never_found(gql):
    await gql(BULK_ITEMS, {"i": {"items": PLANTED}})
    hits = ids(await search(gql, "apple pie", f={"excludeIds": ["pie", "crumble"]}))
    assert hits and not {"pie", "crumble"} & set(hits)


async def test_vector_search_survives_a_catalogue_that_outgrows_its_first_model(gql):
    """The fitted embedder's dimension grows with a small catalogue: a retrain stores its
    vectors in a space of the new dimension instead of failing on the old one."""
    await gql(BULK_ITEMS, {"i": {"items": PLANTED}})
    first = await gql(TRAIN, {"i": {"algorithms": ["content"]}})
    assert first["modelTrain"]["userErrors"] == []
    more = [{"id": f"extra-{n}", "title": f"dish {n}", "text": f"ingredient{n} spice{n % 7}",
             "tags": [f"tag{n % 11}"]} for n in range(300)]
    await gql(BULK_ITEMS, {"i": {"items": more}})
    again = await gql(TRAIN, {"i": {"algorithms": ["content"]}})
    assert again["modelTrain"]["userErrors"] == []
    assert again["modelTrain"]["models"][0]["version"] == 2
    hits = await search(gql, "ingredient12 spice5", r=["VECTOR"])
    assert hits and all(m["retriever"] == "VECTOR" for h in hits for m in h["matches"])
