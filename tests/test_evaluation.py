"""Evaluation tooling: splits keep train and test apart, the evaluator ranks all items, and
the CLI reports a table and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from engines.datasets import Events, movielens
from engines.evaluation import evaluator as evaluation
from engines.evaluation.baselines import MostPopular
from engines.testing import planted_data
from plugins.collaborative import Collaborative
from plugins.item_knn import ItemKnn

SAMPLE = Path(__file__).parent / "data" / "movielens-sample"


def planted_events() -> Events:
    d = planted_data(users_per_cluster=40, events_per_user=10)
    return Events(d.user_ids[d.event_users], d.item_ids[d.event_items], d.event_weights,
                  d.event_times, d.content)


def test_random_holdout_is_disjoint_and_per_user():
    events = planted_events()
    split = evaluation.random_holdout(events, 0.3, seed=1)
    assert len(split.train) + len(split.test) == len(events)
    train_pairs = set(zip(split.train.users.tolist(), split.train.items.tolist(), strict=True))
    test_pairs = set(zip(split.test.users.tolist(), split.test.items.tolist(), strict=True))
    assert not train_pairs & test_pairs
    per_user = np.bincount(split.test.users)
    assert set(per_user[per_user > 0].tolist()) == {3}  # 30% of 10 events per user


def test_temporal_split_holds_out_each_users_latest_events():
    events = movielens(SAMPLE)
    split = evaluation.temporal(events, 0.2)
    for user in np.unique(split.test.users):
        assert split.test.times[split.test.users == user].min() >= \
            split.train.times[split.train.users == user].max()


def test_personalised_models_beat_popularity_on_planted_data():
    split = evaluation.random_holdout(planted_events(), 0.3, seed=2)
    results = {r.name: r for r in evaluation.evaluate(
        {"collaborative": Collaborative({"rank": 16}), "item_knn": ItemKnn(),
         "most_popular": MostPopular()}, split, k=5,
        blends={"mix": {"collaborative": 1.0, "item_knn": 1.0}})}
    assert results["collaborative"].recall > results["most_popular"].recall + 0.1
    assert results["item_knn"].ndcg > results["most_popular"].ndcg
    assert results["mix"].extra["weights"] == {"collaborative": 1.0, "item_knn": 1.0}
    assert 0 < results["most_popular"].coverage < results["collaborative"].coverage
    assert results["most_popular"].mean_popularity > results["collaborative"].mean_popularity


def test_blend_search_tries_single_algorithms_and_mixtures():
    split = evaluation.random_holdout(planted_events(), 0.3, seed=3)
    best, ndcg, history = evaluation.tune_blend(
        {"collaborative": Collaborative({"rank": 16}), "item_knn": ItemKnn()}, split, k=5,
        trials=5)
    assert len(history) == 1 + 5 + 2
    assert ndcg == max(score for _, score in history)
    assert set(best) == {"collaborative", "item_knn"}


def test_evaluate_command_prints_table_and_json(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "gql.cli", "evaluate", "--dataset", "movielens", "--path",
         str(SAMPLE), "-a", "item_knn", "-a", "most_popular", "--blend",
         "item_knn:1,most_popular:0.1", "-k", "5", "--json", str(out)],
        capture_output=True, text=True, check=True, timeout=300)
    assert "| item_knn |" in proc.stdout and "| most_popular |" in proc.stdout
    report = json.loads(out.read_text())
    assert report["split"] == "temporal(0.2)"
    assert {r["name"] for r in report["results"]} == {
        "item_knn", "most_popular", "item_knn:1,most_popular:0.1"}
    assert all(0 <= r["ndcg"] <= 1 for r in report["results"])
