"""Calibrated re-ranking: a list whose categories follow the user's history."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from recsys_helpers import RECORD, genre_of, seed

from engines.serving.calibration import ALPHA, calibrate, category_shares, miscalibration

CATEGORIES = {i: (["animation"] if i < 10 else ["drama"]) for i in range(30)}


def test_a_mostly_animation_history_gets_a_mostly_animation_list():
    target = category_shares([0, 1, 2, 10], [1.0, 1.0, 1.0, 1.0], CATEGORIES)
    assert target == {"animation": 0.75, "drama": 0.25}
    # the algorithms agree on dramas: they fill the top of the uncalibrated list
    candidates = list(range(10, 30)) + list(range(10))
    relevance = np.linspace(1.0, 0.5, len(candidates))
    plain = [candidates[i] for i in calibrate(candidates, relevance, CATEGORIES, target, 0, 8)]
    assert plain == list(range(10, 18))
    calibrated = [candidates[i] for i in
                  calibrate(candidates, relevance, CATEGORIES, target, 0.99, 8)]
    assert sum(i < 10 for i in calibrated) == 6  # 75% of 8
    # a weaker strength trades some of the mix for relevance
    weaker = [candidates[i] for i in calibrate(candidates, relevance, CATEGORIES, target, 0.5, 8)]
    assert 0 < sum(i < 10 for i in weaker) < 6
    assert miscalibration(target, calibrated, CATEGORIES) < 0.05
    assert miscalibration(target, plain, CATEGORIES) > 1.0
    # within each category, the original order is kept
    animation = [i for i in calibrated if i < 10]
    assert animation == sorted(animation)


def steck_objective(
    candidates: list[int], rel: np.ndarray, categories: dict[int, tuple[str, ...]],
    target: dict[str, float], strength: float, chosen: list[int],
) -> np.ndarray:
    """(1 − λ) relevance + λ (−KL(p ‖ q̃)) of the list ``chosen`` + each candidate, straight
    from the definition (the list's relevance so far, equal for all, left out)."""
    top = rel.max()
    scaled = rel / top if top > 0 else np.zeros(len(rel))
    out = np.full(len(candidates), -np.inf)
    for i in range(len(candidates)):
        if i in chosen:
            continue
        listed = [candidates[j] for j in [*chosen, i]]
        q: dict[str, float] = {}  # an item without categories dilutes the list's mix
        for item in listed:
            for c in categories[item]:
                q[c] = q.get(c, 0.0) + 1 / len(categories[item]) / len(listed)
        kl = sum(p * np.log(p / ((1 - ALPHA) * q.get(c, 0.0) + ALPHA * p))
                 for c, p in target.items() if p > 0)
        out[i] = (1 - strength) * scaled[i] - strength * kl
    return out


GENRES = [f"g{k}" for k in range(6)]


@settings(max_examples=60, deadline=None)
@given(
    cats=st.lists(st.lists(st.sampled_from(GENRES), min_size=0, max_size=3, unique=True),
                  min_size=1, max_size=25),
    history=st.lists(st.integers(0, 24), min_size=1, max_size=10),
    rel=st.lists(st.floats(0, 1), min_size=25, max_size=25),
    strength=st.sampled_from([0.1, 0.5, 0.9, 1.0]),
    limit=st.integers(1, 12),
)
def test_each_step_adds_an_item_maximising_stecks_objective(cats, history, rel, strength, limit):
    categories = {i: tuple(c) for i, c in enumerate(cats)}
    candidates = list(range(len(cats)))
    target = category_shares(history, [1.0] * len(history), categories)
    relevance = np.asarray(rel[: len(cats)])
    picked = calibrate(candidates, relevance, categories, target, strength, limit)
    assert len(picked) == min(limit, len(candidates)) == len(set(picked))
    if not target:
        assert picked == list(range(len(picked)))  # nothing to follow: the original order
        return
    for step, best in enumerate(picked):
        objective = steck_objective(candidates, relevance, categories, target, strength,
                                    picked[:step])
        assert objective[best] >= objective.max() - 1e-9


async def test_calibration_follows_a_mixed_history_through_the_api(gql):
    await seed(gql)
    mixed = [{"userId": "mixed", "itemId": f"scifi-{k}", "type": "purchase"} for k in range(6)]
    mixed += [{"userId": "mixed", "itemId": f"romance-{k}", "type": "purchase"}
              for k in range(3)]
    assert (await gql(RECORD, {"i": {"interactions": mixed}}))["interactionsRecord"][
        "userErrors"] == []
    query = """query($c: Float!) { recommendations(userId: "mixed", first: 9, calibration: $c)
      { item { itemId } reasons { algorithm } } }"""

    def genres(recs):
        return [genre_of(r["item"]["itemId"]) for r in recs]

    plain = genres((await gql(query, {"c": 0.0}))["recommendations"])
    calibrated_recs = (await gql(query, {"c": 0.9}))["recommendations"]
    calibrated = genres(calibrated_recs)
    assert len(calibrated) == 9 and all(r["reasons"] for r in calibrated_recs)
    # two thirds scifi, one third romance, like the history; no horror
    assert calibrated.count("scifi") == 6 and calibrated.count("romance") == 3
    assert plain.count("scifi") > 6  # uncalibrated, the dominant genre takes more

    bad = await gql('{ recommendations(userId: "mixed", calibration: 1.5) { rank } }',
                    expect_errors=True)
    assert bad["errors"][0]["extensions"]["field"] == "calibration"
