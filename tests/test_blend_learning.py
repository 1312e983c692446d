"""Blend weights learned on each tenant's own events: a member that only adds noise loses
its weight, a weighting without a significant win leaves the preset as it is, and the
service serves (and reports) what training learned."""

from __future__ import annotations

import numpy as np
from recsys_helpers import seed

from engines.algorithm import Recommended
from engines.evaluation.metrics import ndcg_at_k
from engines.host.registry import Registry
from engines.serving.blending import pool
from engines.testing import planted_data
from engines.training.blend_learning import CandidateTable, learn_blend, validation_split

REASONS = """query($u: String!) { recommendations(userId: $u, first: 10) {
  reasons { algorithm weight } } }"""


def fitted(*names: str, **kwargs: object) -> dict[str, object]:
    data = planted_data(users_per_cluster=40, events_per_user=10, **kwargs)  # type: ignore[arg-type]
    registry = Registry.load()
    models = {}
    for name in names:
        model = registry.create(name)
        model.fit(data)
        models[name] = model
    return {"data": data, "models": models}


def test_a_member_that_only_adds_noise_loses_its_weight():
    made = fitted("item_knn", "trending")
    # popularity is blind to the clusters: at equal weight it pushes other clusters' items in
    learned = learn_blend({"item_knn": 1.0, "trending": 1.0}, made["models"], made["data"])
    assert learned is not None and learned.report["changed"]
    assert learned.weights["trending"] < 0.35 * learned.weights["item_knn"]
    assert learned.report["validation_ndcg@10"] > learned.report["validation_ndcg@10_preset"]


def test_without_a_significant_win_the_preset_stays():
    made = fitted("item_knn")
    twin = Registry.load().create("item_knn")
    twin.fit(made["data"])
    models = {"item_knn": made["models"]["item_knn"], "twin": twin}
    learned = learn_blend({"item_knn": 1.0, "twin": 1.0}, models, made["data"])
    assert learned is not None and not learned.report["changed"]
    assert learned.weights == {"item_knn": 1.0, "twin": 1.0}


def test_the_validation_split_holds_out_only_training_events_of_some_users():
    data = planted_data(users_per_cluster=40, events_per_user=10)
    split = validation_split(data, fraction=0.2)
    assert split is not None
    train, held = split
    assert len(train.event_users) + sum(len(s) for s in held.values()) <= len(data.event_users)
    assert 50 <= len(held) <= 2000 and all(len(s) >= 1 for s in held.values())
    assert validation_split(planted_data(users_per_cluster=10)) is None  # too few users


def test_events_without_times_are_validated_as_offline_splits_are_made():
    """A share of *every* user's events is held out (the graph thins as in a LightGCN-style
    test split), and a bounded number of them are scored."""
    data = planted_data(users_per_cluster=40, events_per_user=10)  # 120 users
    some = validation_split(data, fraction=0.2, max_users=60)
    every = validation_split(data, fraction=0.2, max_users=60, every_user=True)
    assert some is not None and every is not None
    assert len(some[1]) == len(every[1]) == 60  # the users scored
    counts = [np.bincount(split[0].event_users, minlength=split[0].n_users)
              for split in (some, every)]
    # 10 events each: a few users keep 8 in one, every user keeps 8 in the other
    assert (counts[0] == 10).sum() == 60 and (counts[1] == 8).all()
    assert len(every[0].event_users) == len(data.event_users) - 2 * 120


TRAINED = """mutation { modelTrain(input: {}) { models { algorithm version report }
  userErrors { code } } }"""


async def test_training_reports_the_learned_weights_and_serving_follows_them(gql, client):
    from gql.server.app import ENGINE

    await seed(gql, train=False)
    trained = {m["algorithm"]: m for m in (await gql(TRAINED))["modelTrain"]["models"]}
    report = trained["hybrid"]["report"]
    assert set(report["weights"]) == {"collaborative", "item_knn", "ease", "content",
                                      "trending", "cold_start"}
    assert report["validation_users"] >= 50 and "validation_ndcg@10_preset" in report
    service = client.server.app[ENGINE].service
    assert service.blend_weights("default")["hybrid"] == report["weights"]
    # whatever was learned is what requests get: distinctive weights, then the reasons
    service.set_blend("default", "hybrid", {"item_knn": 0.7, "collaborative": 0.2}, 99)
    reasons = (await gql(REASONS, {"u": "scifi-fan-1"}))["recommendations"]
    used = {r["algorithm"]: r["weight"] for rec in reasons for r in rec["reasons"]}
    assert used.keys() <= {"item_knn", "collaborative", "fallback"} and "item_knn" in used
    assert abs(used["item_knn"] - 0.7) < 1e-6


def test_scoring_a_weighting_for_all_users_at_once_ranks_as_the_served_blend_does():
    """The search scores weightings on one padded array; it must agree with ``pool``, the
    blend requests are served with (min-max scaling, weighted sum, ties by item id)."""
    rng = np.random.default_rng(3)
    users = list(range(60))
    # long lists, and lists so short that no user has 10 candidates (a tiny catalogue)
    for catalogue, longest in ((400, 40), (50, 2)):
        lists: dict[str, list[Recommended]] = {n: [] for n in ("a", "b", "c")}
        for n in lists:
            for _ in users:
                ids = rng.choice(catalogue, int(rng.integers(0, longest + 1)), replace=False)
                scores = np.round(rng.random(len(ids)), 1)  # coarse scores: many ties
                lists[n].append(Recommended(ids.astype(np.int64), scores.astype(np.float32)))
        held = {u: set(rng.choice(catalogue, 30, replace=False).tolist()) for u in users}
        table = CandidateTable(lists, users, held)
        for weights in ({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 0.2, "b": 0.0, "c": 1.5}):
            expected = [
                ndcg_at_k(
                    pool({n: (weights[n], lists[n][i]) for n in lists}, 10).ids.tolist(),
                    held[u],
                    10,
                )
                for i, u in enumerate(users)
            ]
            assert np.allclose(table.ndcg(weights, 10), expected), catalogue
