"""Blend weights learned on each tenant's own events: a member that only adds noise loses
its weight, a weighting without a significant win leaves the preset as it is, and the
service serves (and reports) what training learned."""

from __future__ import annotations

from recsys_helpers import seed

from engines.host.registry import Registry
from engines.testing import planted_data
from engines.training.blend_learning import learn_blend, validation_split

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


TRAINED = """mutation { modelTrain(input: {}) { models { algorithm version report }
  userErrors { code } } }"""


async def test_training_reports_the_learned_weights_and_serving_follows_them(gql, client):
    from gql.server.app import ENGINE

    await seed(gql, train=False)
    trained = {m["algorithm"]: m for m in (await gql(TRAINED))["modelTrain"]["models"]}
    report = trained["hybrid"]["report"]
    assert set(report["weights"]) == {"collaborative", "item_knn", "content", "trending",
                                      "cold_start"}
    assert report["validation_users"] >= 50 and "validation_ndcg@10_preset" in report
    service = client.server.app[ENGINE].service
    assert service.blend_weights("default")["hybrid"] == report["weights"]
    # whatever was learned is what requests get: distinctive weights, then the reasons
    service.set_blend("default", "hybrid", {"item_knn": 0.7, "collaborative": 0.2}, 99)
    reasons = (await gql(REASONS, {"u": "scifi-fan-1"}))["recommendations"]
    used = {r["algorithm"]: r["weight"] for rec in reasons for r in rec["reasons"]}
    assert used.keys() <= {"item_knn", "collaborative", "fallback"} and "item_knn" in used
    assert abs(used["item_knn"] - 0.7) < 1e-6
