"""Diversity by maximal marginal relevance: a request's ``diversity`` trades a little
relevance for lists whose items differ in content, and bad values are refused by name."""

from __future__ import annotations

import numpy as np
from recsys_helpers import seed

from engines.serving.diversity import intra_list_diversity, mmr

LIST = """query($u: String!, $d: Float) { recommendations(userId: $u, first: 6, diversity: $d,
  calibration: 0) { item { itemId } } }"""


def test_mmr_keeps_the_ranking_at_zero_and_spreads_out_as_it_grows():
    # three near-copies at the top, then two different items
    vectors = np.array([[1, 0], [0.99, 0.1], [0.98, 0.2], [0, 1], [0.1, -1]], np.float32)
    relevance = np.array([1.0, 0.95, 0.9, 0.6, 0.5])
    assert mmr(relevance, vectors, 0.0, 3) == [0, 1, 2]
    spread = mmr(relevance, vectors, 0.7, 3)
    assert spread[0] == 0 and set(spread[1:]) == {3, 4}
    assert intra_list_diversity(vectors[spread]) > intra_list_diversity(vectors[[0, 1, 2]])
    assert intra_list_diversity(vectors[:1]) == 0.0


def genres(ids: list[str]) -> set[str]:
    return {i.split("-")[0] for i in ids}


async def test_a_diverse_list_reaches_beyond_the_users_favourite_genre(gql):
    await seed(gql)
    plain = [r["item"]["itemId"] for r in
             (await gql(LIST, {"u": "scifi-fan-1", "d": 0.0}))["recommendations"]]
    diverse = [r["item"]["itemId"] for r in
               (await gql(LIST, {"u": "scifi-fan-1", "d": 0.9}))["recommendations"]]
    assert genres(plain) == {"scifi"}  # the planted taste
    assert len(genres(diverse)) > 1 and diverse[0] == plain[0]


async def test_diversity_outside_zero_to_one_is_refused_by_name(gql):
    body = await gql(LIST, {"u": "scifi-fan-1", "d": 1.5}, expect_errors=True)
    error = body["errors"][0]
    assert error["extensions"]["field"] == "diversity" and "between 0 and 1" in error["message"]
