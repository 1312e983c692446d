"""Settings chosen on the tenant's own data at training: the validation split, the metrics
the choice rests on, and the collaborative filter's automatic selection as a user sees it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from recsys_helpers import TRAIN, seed

from engines import Search, holdout_split, ranking_metrics

MODELS = "{ algorithms { name metrics modelConfig } }"


def test_ranking_metrics_match_hand_computed_values():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5],
                       [0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    held = sp.csr_matrix(np.array([[0, 0, 1, 0, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    recall, ndcg = ranking_metrics(scores, seen, held, k=2)
    # user 0 ranks items 1, 2 (0 is seen): item 2 at rank 2, one of its two held-out items;
    # user 1 ranks 3, 2: no hit
    assert recall.tolist() == [0.5, 0.0]
    assert ndcg[0] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert ndcg[1] == 0.0
    recall, _ = ranking_metrics(scores, seen, held, k=4)
    assert recall[1] == pytest.approx(1.0)  # user 1: 3, 2, 1, 0 -> item 0 at rank 4
    assert scores[0, 0] == pytest.approx(0.9)  # not overwritten unless asked


def test_holdout_split_hides_a_share_of_each_chosen_users_items():
    rng = np.random.default_rng(1)
    pref = sp.random(300, 80, density=0.1, format="csr", random_state=2, dtype=np.float32)
    pref.data[:] = rng.random(pref.nnz).astype(np.float32) + 0.5
    split = holdout_split(pref, 0.2, max_users=100, seed=3)
    assert split is not None and len(split.users) == 100
    assert split.train.nnz + split.held.nnz == pref.nnz
    for row, user in enumerate(split.users):
        before = set(pref[user].indices)
        held = set(split.held[row].indices)
        assert held and held <= before and not held & set(split.train[user].indices)
        assert len(held) == max(1, round(0.2 * len(before)))
    again = holdout_split(pref, 0.2, max_users=100, seed=3)
    assert again is not None and (again.held != split.held).nnz == 0
    assert holdout_split(pref[:20], 0.2, min_users=50) is None


def test_the_svd_started_from_a_near_matrix_finds_the_top_singular_vectors():
    """The full fit starts its SVD from the validation fit's vectors (a matrix a few rows
    apart) with one iteration instead of five from random: it must still find the top
    singular subspace, as the exact SVD does."""
    from plugins.collaborative import top_right_singular_vectors

    rng = np.random.default_rng(0)
    # a decaying spectrum (40 strong directions, then a weaker tail), small entries dropped
    u = np.linalg.qr(rng.standard_normal((900, 200)))[0]
    v = np.linalg.qr(rng.standard_normal((700, 200)))[0]
    dense = (u * np.concatenate([np.geomspace(100, 20, 40), np.geomspace(12, 1, 160)])) @ v.T
    dense[np.abs(dense) < 0.01] = 0
    full = sp.csr_matrix(dense, dtype=np.float32)
    near = full.tolil()
    near[:40] = 0  # the validation split: some users' rows differ
    exact = np.linalg.svd(dense, full_matrices=False)[2][:40]

    def missed(vt: np.ndarray) -> float:  # share of the exact top-40 subspace not found
        return 1 - float(np.linalg.norm(exact @ vt.T) ** 2 / 40)

    start = top_right_singular_vectors(sp.csr_matrix(near), 40, iterations=5, seed=1)
    warm = top_right_singular_vectors(full, 40, iterations=1, start=start, seed=2)
    assert warm.shape == (40, 700)
    assert np.allclose(warm @ warm.T, np.eye(40), atol=1e-3)  # orthonormal rows
    assert missed(warm) < 1e-4
    # the start is what does it: with no iteration at all, far closer than from random
    unstarted = top_right_singular_vectors(full, 40, iterations=0, seed=2)
    assert missed(top_right_singular_vectors(full, 40, iterations=0, start=start, seed=2)) < (
        missed(unstarted) / 10
    )


def test_search_moves_only_on_clear_wins_and_stops_at_its_deadline():
    users = np.random.default_rng(0).normal(0, 0.01, 200)  # the same users every time

    def peak(s):  # best at x=3, y=-1; per user
        return users - ((s["x"] - 3) ** 2) - (s["y"] + 1) ** 2

    search = Search(peak, deadline=float("inf"), best={"x": 0, "y": 0})
    assert search.run({"x": [0, 1, 2, 3, 4], "y": [-2, -1, 0, 1]}) == {"x": 3, "y": -1}
    late = Search(peak, deadline=0.0, best={"x": 0, "y": 0})
    assert late.run({"x": [3], "y": [-1]}) == {"x": 0, "y": 0}

    noise = np.random.default_rng(1)

    def flat(s):  # no real difference: each setting's users vary at random
        return np.full(200, 0.2) + (noise.normal(0, 0.05, 200) if s["x"] else 0)

    assert Search(flat, float("inf"), {"x": 0}).run({"x": [1, 2, 3, 4, 5]}) == {"x": 0}


async def test_training_chooses_collaborative_settings_and_records_them(gql):
    await seed(gql)
    # a budget no busy machine can exhaust: the search tries more than the start
    roomy = {"name": "collaborative", "config": {"autotune_budget": 1000.0}}
    res = await gql(TRAIN, {"i": {"algorithms": ["collaborative"], "configs": [roomy]}})
    assert res["modelTrain"]["userErrors"] == []
    algorithms = {a["name"]: a for a in (await gql(MODELS))["algorithms"]}
    collaborative = algorithms["collaborative"]
    tuning = collaborative["metrics"]["autotune"]
    assert tuning["validation_recall@20"] >= tuning["validation_recall@20_before"]
    assert tuning["settings_tried"] > 1
    chosen, config = tuning["chosen"], collaborative["modelConfig"]
    assert config["popularity_exponent"] == chosen["popularity_exponent"]
    assert config["rank"] == chosen["rank"]

    # off by a setting: the configured values stay
    off = {"name": "collaborative", "config": {"autotune": False, "rank": 7}}
    trained = await gql(TRAIN, {"i": {"algorithms": ["collaborative"], "configs": [off]}})
    assert trained["modelTrain"]["userErrors"] == []
    collaborative = {a["name"]: a for a in (await gql(MODELS))["algorithms"]}["collaborative"]
    assert "autotune" not in collaborative["metrics"]
    assert collaborative["modelConfig"]["rank"] == 7
    assert collaborative["modelConfig"]["popularity_exponent"] == 0.15


async def test_a_seed_numpy_cannot_take_is_a_config_error_not_a_fault(gql):
    await seed(gql, train=False)
    for name in ("collaborative", "ease"):
        bad = {"name": name, "config": {"random_state": -1}}
        res = await gql(TRAIN, {"i": {"algorithms": [name], "configs": [bad]}})
        errors = res["modelTrain"]["userErrors"]
        assert [e["code"] for e in errors] == ["INVALID_CONFIG"], errors
        assert "random_state" in errors[0]["message"]
