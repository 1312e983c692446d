"""Cold items routed into blended lists: new items that no collaborative signal can rank get
a share of the list from the content algorithm, marked ``cold_item``."""

from __future__ import annotations

import numpy as np
from recsys_helpers import BULK_ITEMS, TRAIN, genre_of, seed

from engines.algorithm import Recommended
from engines.serving.blending import pool
from engines.serving.cold_routing import cold_slots, route_cold

LIST = """query($u: String!, $n: Int!, $c: Float) {
  recommendations(userId: $u, first: $n, coldItems: $c, calibration: 0) {
    score item { itemId } reasons { algorithm contribution } } }"""
NEW = [{"id": f"horror-new-{k}", "title": f"ghost night {k}", "text": "ghost blood night",
        "categories": ["horror"], "tags": ["horror-tag"]} for k in range(3)]


def test_cold_items_take_evenly_spread_places_from_the_warm_tail():
    rec = Recommended(np.array([50, 7, 51, 52]), np.array([4.0, 3.0, 2.0, 1.0], np.float32))
    blended = pool({"content": (1.0, rec)}, 10)
    chosen = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    cold = np.array([7, 50, 51, 52])
    order, routed = route_cold(chosen, blended, cold, {"content"}, slots=3)
    # 7 is cold and already there on merit: two more, the best content ranks first
    assert routed == [50, 51] and len(order) == 10
    assert order.index(50) == 4 and order.index(51) == 9
    assert 9 not in order and 10 not in order  # the last warm items gave way
    assert route_cold(chosen, blended, cold, {"collaborative"}, 3) == (chosen, [])
    assert cold_slots(0.1, 10) == 1 and cold_slots(0.1, 4) == 0 and cold_slots(0, 10) == 0


async def test_a_blend_shows_new_items_only_when_asked(gql):
    await seed(gql, train=False)
    res = await gql(BULK_ITEMS, {"i": {"items": NEW}})
    assert res["itemsBulkUpsert"]["userErrors"] == []
    assert (await gql(TRAIN, {"i": {}}))["modelTrain"]["userErrors"] == []
    plain = (await gql(LIST, {"u": "horror-fan-1", "n": 10}))["recommendations"]
    assert not any(r["item"]["itemId"].startswith("horror-new") for r in plain)
    routed = (await gql(LIST, {"u": "horror-fan-1", "n": 10, "c": 0.2}))["recommendations"]
    new = [n for n, r in enumerate(routed) if r["item"]["itemId"].startswith("horror-new")]
    marked = [n for n, r in enumerate(routed)
              if any(c["algorithm"] == "cold_item" for c in r["reasons"])]
    # two places of ten hold items with fewer than 5 events (long-tail items ranked on
    # merit count too); the routed ones are the new items, at the 5th and 10th places
    assert new and new == marked and set(new) <= {4, 9}
    for n in new:
        reasons = [c["algorithm"] for c in routed[n]["reasons"]]
        assert reasons[-1] == "cold_item" and "content" in reasons
        total = sum(c["contribution"] for c in routed[n]["reasons"])
        assert abs(total - routed[n]["score"]) < 1e-4
    assert {genre_of(r["item"]["itemId"]) for r in routed[:4]} == {"horror"}
    bad = await gql(LIST, {"u": "horror-fan-1", "n": 10, "c": 2.0}, expect_errors=True)
    assert bad["errors"][0]["extensions"] == {"code": "INVALID", "field": "coldItems"}


PAGED = """query($u: String!, $n: Int!, $c: Float) {
  recommendations(userId: $u, first: $n, coldItems: $c, calibration: 0) {
    cursor item { itemId } reasons { algorithm } } }"""


async def test_kept_pages_route_per_page_and_keep_displaced_items(gql):
    await seed(gql, train=False)
    await gql(BULK_ITEMS, {"i": {"items": NEW}})
    await gql(TRAIN, {"i": {}})
    plain = (await gql(LIST, {"u": "horror-fan-1", "n": 10}))["recommendations"]
    paged = (await gql(PAGED, {"u": "horror-fan-1", "n": 5, "c": 0.2}))["recommendations"]
    first = [r["item"]["itemId"] for r in paged]
    marked = [r["item"]["itemId"] for r in paged
              if any(c["algorithm"] == "cold_item" for c in r["reasons"])]
    assert marked and all(m.startswith("horror-new") for m in marked)
    # the next page opens with the warm items the cold ones displaced from this one
    after = """query($u: String!, $a: String!) { recommendations(userId: $u, first: 5,
      after: $a) { item { itemId } } }"""
    nxt = (await gql(after, {"u": "horror-fan-1", "a": paged[-1]["cursor"]}))["recommendations"]
    shown = first + [r["item"]["itemId"] for r in nxt]
    warm = [r["item"]["itemId"] for r in plain if not r["item"]["itemId"].startswith("horror-new")]
    assert warm[:8] == [i for i in shown if not i.startswith("horror-new")][:8]
    assert len(set(shown)) == len(shown)
